"""Whether a model's scores are calibrated probabilities: the premise of the precision estimated before outcomes.

The nightly estimate of precision (CBPE, mart `performance_estimates`) is the mean
score of the customers labelled bad; it is right only when a score of 0.8 means
8 in 10 such customers turn out bad. Training checks this on the validation night
(and on the test night, what the estimate is later compared with); when the error is
above the tolerance, it fits a Platt map on the validation night and registers the
model wrapped in it (`recalibration.RecalibratedClassifier`), threshold mapped alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from custlabel.training.evaluate import check_labels
from custlabel.training.recalibration import RecalibratedClassifier, fit_platt
from custlabel.training.threshold_cut import is_bad

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

    def as_tags(self, prefix: str = "calibration_") -> dict[str, str]:
        """The same figures as version tags ("true" | "false" for the verdict)."""
        return {
            key: str(value == 1.0).lower() if key.endswith("needs_recalibration") else f"{value:.4f}"
            for key, value in self.as_dict(prefix).items()
        }


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


@dataclass(frozen=True)
class Outcomes:
    """Labelled rows of one period: outcomes and the scores of the model as trained."""

    y: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class Calibration:
    """The chosen model's calibration at training: checked on validation and test, recalibrated when needed."""

    # what gets registered: the pipeline, or the pipeline wrapped in its Platt map
    model: Any
    # the operating point on the registered model's scores (mapped through the Platt map)
    threshold: float
    # the operating point chosen on the scores as trained
    threshold_as_trained: float
    validation: CalibrationCheck
    test: CalibrationCheck
    recalibrated_validation: CalibrationCheck | None
    recalibrated_test: CalibrationCheck | None
    note: str

    @property
    def recalibrated(self) -> bool:
        return isinstance(self.model, RecalibratedClassifier)

    def _map(self) -> dict[str, float]:
        if not self.recalibrated:
            return {"calibration_recalibrated": 0.0}
        return {
            "calibration_recalibrated": 1.0,
            "calibration_slope": self.model.slope,
            "calibration_intercept": self.model.intercept,
            "calibration_threshold_as_trained": self.threshold_as_trained,
        }

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: `calibration_*` on validation as trained, `calibration_test_*`, `recalibrated_*` after."""
        figures = {**self.validation.as_dict(), **self.test.as_dict("calibration_test_"), **self._map()}
        if self.recalibrated_validation is not None and self.recalibrated_test is not None:
            figures |= self.recalibrated_validation.as_dict("recalibrated_")
            figures |= self.recalibrated_test.as_dict("recalibrated_test_")
        return figures

    def tags(self) -> dict[str, str]:
        """The same figures as version tags, with what was done in words."""
        tags = {**self.validation.as_tags(), **self.test.as_tags("calibration_test_")}
        if self.recalibrated_validation is not None and self.recalibrated_test is not None:
            tags |= self.recalibrated_validation.as_tags("recalibrated_")
            tags |= self.recalibrated_test.as_tags("recalibrated_test_")
        tags |= {key: repr(value) for key, value in self._map().items() if key != "calibration_recalibrated"}
        return tags | {"calibration_recalibrated": str(self.recalibrated).lower(), "calibration_note": self.note}

    def details(self) -> dict[str, Any]:
        """For the release log: the checks before and after, and what was done."""
        checks = {"validation": self.validation, "test": self.test}
        if self.recalibrated_validation is not None and self.recalibrated_test is not None:
            checks |= {"recalibrated_validation": self.recalibrated_validation, "recalibrated_test": self.recalibrated_test}
        return {
            **{name: asdict(check) for name, check in checks.items()},
            **self._map(),
            "recalibrated": self.recalibrated,
            "note": self.note,
        }


def calibrate(
    model: Any, threshold: float, validation: Outcomes, test: Outcomes, tolerance: float = DEFAULT_TOLERANCE
) -> Calibration:
    """Check the model's calibration on validation and test; when validation needs it, recalibrate on validation.

    The recalibration is kept only when it maps every score monotonically (positive slope),
    leaves every label of both periods unchanged at the mapped threshold, and lowers the
    calibration error on validation; otherwise the model stays as trained and the note says why.
    """
    before = check(validation.y, validation.scores, threshold, tolerance=tolerance)
    test_before = check(test.y, test.scores, threshold, tolerance=tolerance)

    def as_trained(note: str) -> Calibration:
        return Calibration(model, threshold, threshold, before, test_before, None, None, note)

    if not before.needs_recalibration:
        return as_trained(f"calibrated within {tolerance} on validation: scores kept as trained")
    slope, intercept = fit_platt(validation.y, validation.scores)
    if slope <= 0:
        return as_trained(f"not recalibrated: the Platt slope {slope:.3g} is not positive (scores do not rank outcomes)")
    recalibrated = RecalibratedClassifier(model, slope, intercept)
    mapped = float(recalibrated.calibrate(np.array([threshold]))[0])
    for period in (validation, test):
        changed = int((is_bad(recalibrated.calibrate(period.scores), mapped) != is_bad(period.scores, threshold)).sum())
        if changed:
            return as_trained(f"not recalibrated: the Platt map would change {changed} labels (rounding at the threshold)")
    after = check(validation.y, recalibrated.calibrate(validation.scores), mapped, tolerance=tolerance)
    if after.expected_calibration_error >= before.expected_calibration_error:
        return as_trained("not recalibrated: the Platt map does not lower the calibration error on validation")
    test_after = check(test.y, recalibrated.calibrate(test.scores), mapped, tolerance=tolerance)
    note = (
        f"recalibrated on validation (Platt: slope {slope:.3f}, intercept {intercept:.3f}): calibration error "
        f"{before.expected_calibration_error:.4f} -> {after.expected_calibration_error:.4f}, "
        f"threshold {threshold:.4f} -> {mapped:.4f}"
    )
    return Calibration(recalibrated, mapped, threshold, before, test_before, after, test_after, note)
