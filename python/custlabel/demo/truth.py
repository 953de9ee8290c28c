"""The demo's truth: P(bad) per customer and night, given the hidden state known at that night.

A customer is bad in an outcome window (T, T+W] when they bring no paid revenue in it
or leave an invoice due in it unpaid when it ends (W is dbt's `outcome_window_days`).
The probability of that given the hidden state at the night T (the traits, and
whether the customer has begun to leave) follows in closed form and is written to
`demo_truth.bad_probability`, which only benchmarks read: a customer who has begun to
leave pays nothing any more, so is bad for sure; for the others, the day they may
begin to leave inside the window is integrated out with their hazard, and payment
delays (on time, late, never) are integrated exactly. Sales of the 30 days before T
count as unknown like those of the window (their invoices fall due in it), and
random-walk steps inside the window are ignored (mean zero, small over a window).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from custlabel.demo.world import (
    LATE_PAYMENT_DAYS,
    LEAVING_LOOKBACK_DAYS,
    LEAVING_RETURN_SHARE,
    ON_TIME_DELAY_SHAPE,
    PAYMENT_TERMS_DAYS,
    DemoSpec,
    Timeline,
    Traits,
    engaged_days,
    late_share,
    month_starts,
    on_time_delay_scale,
)
from custlabel.errors import CustlabelError

TRUTH_STEPS = 9  # quadrature points over the day a customer may begin to leave inside the window


def outcome_window_days(project_dir: Path) -> int:
    """The outcome window W that dbt's labels use: the var `outcome_window_days` of dbt_project.yml."""
    path = project_dir / "dbt_project.yml"
    window = (yaml.safe_load(path.read_text()).get("vars") or {}).get("outcome_window_days")
    if not isinstance(window, int) or isinstance(window, bool) or window <= 0:
        raise CustlabelError(f"{path}: vars.outcome_window_days must be a positive whole number of days, not {window!r}")
    return window


def truth_dates(spec: DemoSpec) -> list[date]:
    """As-of dates whose outcome window has matured inside the generated history."""
    candidates = month_starts(spec.start_date, spec.end_date)[1:] + [spec.end_date]
    last = spec.end_date - timedelta(days=spec.window_days)
    return sorted({d for d in candidates if d <= last})


@dataclass(frozen=True)
class _Payment:
    """How customers pay in one month: see world.payment_delays."""

    p_default: np.ndarray
    late_share: np.ndarray
    delay_scale: np.ndarray

    @classmethod
    def of(cls, p_default: np.ndarray) -> _Payment:
        return cls(p_default, late_share(p_default), on_time_delay_scale(p_default))


def _p_bad(good_expected: np.ndarray, unpaid_expected: np.ndarray) -> np.ndarray:
    """P(no paid sale, or at least one unpaid invoice) for Poisson counts with these means."""
    return 1 - (1 - np.exp(-good_expected)) * np.exp(-unpaid_expected)


def _gamma_cdf(shape: int, u: np.ndarray) -> np.ndarray:
    """CDF at u of a Gamma(shape, 1) for a whole-number shape (an Erlang distribution)."""
    term = np.ones_like(u)
    total = np.ones_like(u)
    for j in range(1, shape):
        term = term * u / j
        total += term
    return 1 - np.exp(-u) * total


def _paid_within_integral(x, payment: _Payment) -> np.ndarray:
    """Integral over [0, x] of P(an invoice that will be paid is paid within v days of the sale), dv."""
    x = np.maximum(x, 0.0)
    # For a Gamma(k, scale) delay with CDF F_k: the integral of F_k over [0, x] is x F_k(x) - k scale F_(k+1)(x).
    k, u = ON_TIME_DELAY_SHAPE, x / payment.delay_scale
    on_time = x * _gamma_cdf(k, u) - k * payment.delay_scale * _gamma_cdf(k + 1, u)
    lo, hi = LATE_PAYMENT_DAYS
    late = np.where(x <= lo, 0.0, np.where(x <= hi, (x - lo) ** 2 / (2 * (hi - lo)), (hi - lo) / 2 + x - hi))
    return (1 - payment.late_share) * on_time + payment.late_share * late


def _open_at(lo: float, hi: float, payment: _Payment) -> np.ndarray:
    """Integral over v in [lo, hi] (days from a sale) of P(its invoice is unpaid v days after the sale)."""
    if hi <= lo:
        return np.zeros_like(payment.p_default)
    paid = _paid_within_integral(hi, payment) - _paid_within_integral(lo, payment)
    return (hi - lo) - (1 - payment.p_default) * paid


def _p_bad_staying(w: int, paying, payment: _Payment) -> np.ndarray:
    """P(bad in the window) for a customer who does not begin to leave in it.

    Good: sales in the window paid before it ends. Unpaid: invoices due in the window (sales
    in (-terms, w - terms]) not paid when it ends."""
    good = paying * (1 - payment.p_default) * _paid_within_integral(w, payment)
    unpaid = paying * _open_at(PAYMENT_TERMS_DAYS, w + PAYMENT_TERMS_DAYS, payment)
    return _p_bad(good, unpaid)


def _p_bad_leaving_at(s: float, w: int, paying, payment: _Payment) -> np.ndarray:
    """P(bad in the window) for a customer who begins to leave s days into it (0 < s < w).

    Good: sales before the onset paid before it and not returned then. Unpaid: invoices due in
    the window (sales in (-terms, w - terms]) still open at the onset and not returned, and every
    later sale due in the window that is not returned."""
    lookback, keep = LEAVING_LOOKBACK_DAYS, 1 - LEAVING_RETURN_SHARE
    # v: days from a sale to the onset; sales with v < lookback are returned with LEAVING_RETURN_SHARE
    paid_by_onset = _paid_within_integral(s, payment) - LEAVING_RETURN_SHARE * _paid_within_integral(
        min(s, lookback), payment
    )
    good = paying * (1 - payment.p_default) * paid_by_onset
    a, b = max(0.0, s - (w - PAYMENT_TERMS_DAYS)), s + PAYMENT_TERMS_DAYS
    open_recent = _open_at(a, min(b, lookback), payment)
    open_older = _open_at(max(a, lookback), b, payment)
    after = max(w - PAYMENT_TERMS_DAYS - s, 0.0)
    later = float(engaged_days(np.float64(0.0), np.float64(after)))
    unpaid = paying * (keep * open_recent + open_older + keep * later)
    return _p_bad(good, unpaid)


def bad_probability(spec: DemoSpec, ids, timeline: Timeline, created_day, traits: Traits) -> pd.DataFrame:
    """P(bad) per customer and matured as-of date, given the hidden state known at that night.

    The state is the month's traits at the night and, for a customer who has begun to
    leave, the day they began: such a customer pays nothing any more, so is bad for sure.
    What happens after the night is integrated out: a customer who has not begun to leave
    may begin on any day of the window, with their hazard, and then stops paying.
    """
    paying = traits.rate * (1 - traits.p_cancel) * (1 - traits.p_return)
    hazard = traits.leave_hazard
    w = spec.window_days
    edges = np.linspace(0, w, TRUTH_STEPS + 1)
    starts = (edges[:-1] + edges[1:]) / 2
    start_weights = -np.diff(np.exp(-np.outer(hazard, edges)), axis=1)  # P(begins to leave in each step)
    frames = []
    for as_of in truth_dates(spec):
        day = (as_of - spec.start_date).days
        month = int(np.searchsorted(timeline.edges, day, side="right") - 1)
        payment = _Payment.of(traits.p_default[:, month])
        p_bad = np.exp(-hazard * w) * _p_bad_staying(w, paying[:, month], payment)
        for start, weight in zip(starts, start_weights.T, strict=True):
            p_bad += weight * _p_bad_leaving_at(start, w, paying[:, month], payment)
        p_bad = np.where(traits.leave_day < day, 1.0, p_bad)
        exists = created_day < day + 1
        frames.append(pd.DataFrame({"customer_id": ids[exists], "as_of_date": as_of, "p_bad": p_bad[exists]}))
    if not frames:
        return pd.DataFrame(columns=["customer_id", "as_of_date", "p_bad"])
    return pd.concat(frames, ignore_index=True)
