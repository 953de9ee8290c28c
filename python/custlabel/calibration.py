"""Whether a model's scores are calibrated probabilities: the premise of the precision estimated before outcomes.

The nightly estimate of precision (CBPE, mart `performance_estimates`) is the mean
score of the customers labelled bad; it is right only when a score of 0.8 means
8 in 10 such customers turn out bad. Training checks this on the validation night
and records it; when the error is above the tolerance, the version needs
recalibration before its scores can stand in for outcomes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from custlabel.evaluate import check_labels

DEFAULT_BINS = 10
DEFAULT_TOLERANCE = 0.03


@dataclass(frozen=True)
class CalibrationCheck:
    """How far scores are from observed bad rates on labelled rows."""

    expected_calibration_error: float
    max_bin_gap: float
    mean_score: float
    observed_bad_rate: float
    estimated_precision: float | None
    realized_precision: float | None
    tolerance: float
    needs_recalibration: bool

    def as_dict(self, prefix: str = "calibration_") -> dict[str, float]:
        """Plain figures for MLflow metrics or version tags (None left out)."""
        return {f"{prefix}{key}": float(value) for key, value in asdict(self).items() if value is not None}


def check(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float | None = None,
    bins: int = DEFAULT_BINS,
    tolerance: float = DEFAULT_TOLERANCE,
) -> CalibrationCheck:
    """Calibration error of scores against outcomes, and whether recalibration is needed.

    Args:
        threshold: the operating point; when given, the precision estimated from the
            scores of the rows labelled bad is compared with their realized precision.
        bins: equal-count score bins of the expected calibration error.
        tolerance: largest acceptable calibration error and precision-estimate error.
    """
    y = np.asarray(y_true).astype(float)
    p = np.asarray(scores).astype(float)
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} rows and scores {p.size}: they must be the same rows")
    check_labels(y, "calibration check")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("scores must be probabilities in [0, 1] without NaN")
    order = np.argsort(p, kind="stable")
    gaps, weights = [], []
    for part in np.array_split(order, min(bins, y.size)):
        gaps.append(abs(p[part].mean() - y[part].mean()))
        weights.append(part.size / y.size)
    ece = float(np.dot(gaps, weights))
    estimated = realized = None
    if threshold is not None:
        flagged = p >= threshold
        if flagged.any():
            estimated, realized = float(p[flagged].mean()), float(y[flagged].mean())
    precision_gap = 0.0 if estimated is None else abs(estimated - realized)
    return CalibrationCheck(
        expected_calibration_error=ece,
        max_bin_gap=float(max(gaps)),
        mean_score=float(p.mean()),
        observed_bad_rate=float(y.mean()),
        estimated_precision=estimated,
        realized_precision=realized,
        tolerance=tolerance,
        needs_recalibration=bool(ece > tolerance or precision_gap > tolerance),
    )
