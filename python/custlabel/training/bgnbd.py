"""BG/NBD (Fader, Hardie & Lee 2005), the buy-till-you-die baseline: a maximum-likelihood fit and its predictions.

Each customer buys at a Poisson rate (gamma-distributed over customers, r and alpha)
and after each repeat purchase drops out with a probability (beta-distributed, a and b).

As published, a customer is summarised from their first purchase, in days: x the
repeat purchases (the first excluded), t_x the time of the last purchase since the
first, T the age since the first purchase, each as known at the as_of_date (the
features `repeat_purchases_count`, `days_since_last_purchase`,
`days_since_first_purchase`, over every purchase known that night, so the fit stays
time-correct). A customer without a purchase has no summary: the model says nothing
about them, rather than reading them as a buyer who never came back. The transformer
`BGNBDFeatures` learns the four parameters in `fit` (on the customers with a purchase)
and adds probability alive and expected purchases in the outcome window in
`transform` (NaN without a purchase), inside the scikit-learn pipeline, so scoring
computes them too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1
from sklearn.base import BaseEstimator, TransformerMixin

# The features BG/NBD reads (T, days since the last purchase, x), in the order the transformer expects them.
INPUT_FEATURES = ["days_since_first_purchase", "days_since_last_purchase", "repeat_purchases_count"]
OUTPUT_FEATURES = ["bgnbd_p_alive", "bgnbd_expected_purchases"]
TIME_UNIT = "days"


class BGNBDFitError(ValueError):
    """The BG/NBD likelihood could not be maximised on these customers."""


@dataclass(frozen=True)
class Summary:
    """Per customer with a purchase: repeat purchases x, last purchase t_x and age T since the first (days)."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray


@dataclass(frozen=True)
class BGNBDParameters:
    """The fitted population: purchase rate ~ Gamma(r, alpha), dropout ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def _values(features: pd.DataFrame | np.ndarray) -> np.ndarray:
    if isinstance(features, pd.DataFrame):
        return features[INPUT_FEATURES].to_numpy(float)
    return np.asarray(features, float)


def has_purchase(features: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Which customers have a first purchase before the night (the only ones with a summary)."""
    return ~np.isnan(_values(features)[:, 0])


def summarise(features: pd.DataFrame | np.ndarray) -> Summary:
    """x, t_x, T from the INPUT_FEATURES columns (a frame with those names, or an array in that order).

    Raises:
        ValueError: a customer without a purchase (select the others with `has_purchase`).
    """
    values = _values(features)
    missing = int((~has_purchase(values)).sum())
    if missing:
        raise ValueError(
            f"{missing} customers have no purchase, so no BG/NBD summary: pass only the rows has_purchase() selects"
        )
    age, since_last, repeats = values[:, 0], values[:, 1], values[:, 2]
    T = np.clip(age, 0.0, None)
    x = np.rint(np.clip(np.nan_to_num(repeats, nan=0.0), 0.0, None))
    t_x = np.where(x > 0, np.clip(T - np.nan_to_num(since_last, nan=age), 0.0, T), 0.0)
    return Summary(x, t_x, T)


def log_likelihood(params: BGNBDParameters, data: Summary) -> np.ndarray:
    """Each customer's log-likelihood (FHL 2005, eq. 6)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = data.x, data.t_x, data.T
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    alive = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    repeat = x > 0
    dropped = np.full_like(x, -np.inf)
    dropped[repeat] = betaln(a + 1, b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    return common + np.logaddexp(alive, dropped)


def fit(data: Summary, weights: np.ndarray | None = None) -> BGNBDParameters:
    """Maximum-likelihood r, alpha, a, b (L-BFGS-B on their logarithms), over the distinct (x, t_x, T)."""
    if len(data.x) == 0:
        raise BGNBDFitError("BG/NBD needs at least one customer to fit")
    weights = np.ones_like(data.x) if weights is None else np.asarray(weights, float)
    # Features count in whole days, so customers share few distinct summaries: fit those, weighted.
    rows = pd.DataFrame({"x": data.x, "t_x": data.t_x, "T": data.T, "w": weights}).groupby(["x", "t_x", "T"]).sum()
    data = Summary(*(rows.index.get_level_values(name).to_numpy(float) for name in ("x", "t_x", "T")))
    w = rows["w"].to_numpy() / rows["w"].sum()

    def loss(log_params: np.ndarray) -> float:
        value = -float(np.dot(w, log_likelihood(BGNBDParameters(*np.exp(log_params)), data)))
        return value if np.isfinite(value) else 1e12

    # Start from a rate of the observed mean purchases per day and a mildly skewed dropout.
    rate = max(float(np.dot(w, data.x)) / max(float(np.dot(w, data.T)), 1.0), 1e-4)
    start = np.log([1.0, 1.0 / rate, 1.0, 3.0])
    found = minimize(loss, start, method="L-BFGS-B", bounds=[(-10.0, 10.0)] * 4, options={"ftol": 1e-12, "gtol": 1e-9})
    if found.fun >= 1e12:
        raise BGNBDFitError(f"BG/NBD likelihood did not converge: {found.message}")
    return BGNBDParameters(*(float(v) for v in np.exp(found.x)))


def _dropout_odds(params: BGNBDParameters, data: Summary) -> np.ndarray:
    """a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x) for x > 0, else 0 (in log space)."""
    x = data.x
    odds = np.zeros_like(x)
    repeat = x > 0
    log_odds = (
        np.log(params.a)
        - np.log(params.b + x[repeat] - 1)
        + (params.r + x[repeat]) * (np.log(params.alpha + data.T[repeat]) - np.log(params.alpha + data.t_x[repeat]))
    )
    odds[repeat] = np.exp(np.minimum(log_odds, 700.0))
    return odds


def probability_alive(params: BGNBDParameters, data: Summary) -> np.ndarray:
    """P(still alive at T | x, t_x, T)."""
    return 1.0 / (1.0 + _dropout_odds(params, data))


def expected_purchases(params: BGNBDParameters, data: Summary, days: float) -> np.ndarray:
    """E[purchases in (T, T + days] | x, t_x, T] (FHL 2005, eq. 10).

    The hypergeometric term is taken through Euler's transformation, 2F1(a, b; c; z) =
    (1 - z)^(c - a - b) 2F1(c - a, c - b; c; z): its parameters then no longer grow with
    x, so frequent buyers do not overflow it.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, T = data.x, data.T
    alive = probability_alive(params, data)
    z = days / (alpha + T + days)
    with np.errstate(all="ignore"):
        tail = 1.0 - (1.0 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        expected = (a + b + x - 1) / (a - 1) * tail * alive
    # Where the series still fails (extreme fits), the alive rate over the window bounds it.
    bound = alive * (r + x) / (alpha + T) * days
    return np.where(np.isfinite(expected) & (expected >= 0), expected, bound)


def probability_no_purchase(params: BGNBDParameters, data: Summary, days: float) -> np.ndarray:
    """P(no purchase in (T, T + days] | x, t_x, T): dropped out, or alive and no Poisson event."""
    alive = probability_alive(params, data)
    quiet_if_alive = np.exp((params.r + data.x) * np.log((params.alpha + data.T) / (params.alpha + data.T + days)))
    return (1.0 - alive) + alive * quiet_if_alive


class BGNBDFeatures(TransformerMixin, BaseEstimator):
    """Pipeline step: fit learns r, alpha, a, b; transform gives probability alive and expected purchases (NaN without a purchase)."""

    def __init__(self, window_days: int = 90) -> None:
        self.window_days = window_days

    def fit(self, X, y=None):  # noqa: N803 - scikit-learn's signature
        values = _values(X)
        self.params_ = fit(summarise(values[has_purchase(values)]))
        self.n_features_in_ = len(INPUT_FEATURES)
        return self

    def transform(self, X) -> np.ndarray:  # noqa: N803
        values = _values(X)
        bought = has_purchase(values)
        added = np.full((len(values), len(OUTPUT_FEATURES)), np.nan)
        data = summarise(values[bought])
        added[bought, 0] = probability_alive(self.params_, data)
        added[bought, 1] = expected_purchases(self.params_, data, self.window_days)
        return added

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(OUTPUT_FEATURES, dtype=object)
