"""A recalibrated model: a fitted classifier whose probability passes through a monotone Platt map, in numpy and in SQL.

The map is sigmoid(slope * logit(p) + intercept) with a positive slope: it changes the
scores, never their order, so the threshold mapped through it labels the same customers.
The wrapper is what gets registered (skops must trust `TRUSTED_TYPE`), so every path that
scores a registered version (Python, SQL, reasons, explanations) applies the map.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from psycopg import sql
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

TRUSTED_TYPE = "custlabel.training.recalibration.RecalibratedClassifier"
# Scores are kept this far from 0 and 1 before their log-odds are taken (finite in both engines).
EPSILON = 1e-15
# exp() of more than about 709 overflows a double precision in Postgres (Python gives inf).
MAX_LOG_ODDS = 700.0


def _log_odds(scores: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(scores, dtype=float), EPSILON, 1 - EPSILON)
    return np.log(p / (1 - p))


def platt(scores: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """sigmoid(slope * logit(p) + intercept) of each probability."""
    log_odds = np.clip(slope * _log_odds(scores) + intercept, -MAX_LOG_ODDS, MAX_LOG_ODDS)
    return 1 / (1 + np.exp(-log_odds))


def fit_platt(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of sigmoid(slope * logit(score) + intercept) fitted to outcomes (no penalty)."""
    fitted = LogisticRegression(C=np.inf, max_iter=1000).fit(_log_odds(scores).reshape(-1, 1), y_true)
    return float(fitted.coef_[0, 0]), float(fitted.intercept_[0])


def platt_sql(score: sql.Composable, slope: float, intercept: float) -> sql.Composable:
    """The same map as a Postgres expression over a probability column."""
    p = sql.SQL("least(greatest({score}, {low}), {high})").format(
        score=score, low=_double(EPSILON), high=_double(1 - EPSILON)
    )
    mapped = sql.SQL("{slope} * ln({p} / (1.0::double precision - {p})) + {intercept}").format(
        slope=_double(slope), p=p, intercept=_double(intercept)
    )
    log_odds = sql.SQL("least(greatest({mapped}, {min}), {max})").format(
        mapped=mapped, min=_double(-MAX_LOG_ODDS), max=_double(MAX_LOG_ODDS)
    )
    return sql.SQL("(1.0::double precision / (1.0::double precision + exp(-({log_odds}))))").format(log_odds=log_odds)


def _double(value: float) -> sql.Composable:
    return sql.SQL("{}::double precision").format(sql.Literal(float(value)))


class RecalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose probability of the second class is recalibrated by a Platt map (slope > 0).

    `fit` fits the map on labelled rows and leaves the classifier as it is (it came fitted).
    """

    def __init__(self, model: Any = None, slope: float = 1.0, intercept: float = 0.0) -> None:
        self.model = model
        self.slope = slope
        self.intercept = intercept

    @property
    def classes_(self) -> np.ndarray:
        return self.model.classes_

    @property
    def feature_names_in_(self) -> np.ndarray:
        return self.model.feature_names_in_

    def __sklearn_is_fitted__(self) -> bool:
        return self.model is not None

    def fit(self, features: pd.DataFrame, y: np.ndarray) -> RecalibratedClassifier:
        """Fit the Platt map to these rows' outcomes; the classifier inside is not refitted."""
        self.slope, self.intercept = fit_platt(y, self.model.predict_proba(features)[:, 1])
        return self

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """The recalibrated probability of uncalibrated scores (the threshold too)."""
        return platt(scores, self.slope, self.intercept)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        calibrated = self.calibrate(self.model.predict_proba(features)[:, 1])
        return np.column_stack([1 - calibrated, calibrated])

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return self.classes_[(self.predict_proba(features)[:, 1] >= 0.5).astype(int)]


def uncalibrated(model: Any) -> Any:
    """The fitted pipeline inside a recalibrated model (the model itself when it was not recalibrated)."""
    return model.model if isinstance(model, RecalibratedClassifier) else model


def probability_sql(model: Any, raw: sql.Composable) -> sql.Composable:
    """The model's probability in SQL from its uncalibrated pipeline's (unchanged when not recalibrated)."""
    if isinstance(model, RecalibratedClassifier):
        return platt_sql(raw, model.slope, model.intercept)
    return raw
