"""Recalibration at training: overconfident scores are mapped back to probabilities, the labels stay the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import partial_dependence, permutation_importance
from sklearn.linear_model import LogisticRegression

from custlabel.training import calibration, recalibration, threshold_cut

TOLERANCE = calibration.DEFAULT_TOLERANCE


def _rows(count: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Two features and outcomes drawn from a known logistic P(bad) (about one in four bad)."""
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(rng.normal(size=(count, 2)), columns=["a", "b"])
    p_bad = 1 / (1 + np.exp(-(1.2 * features["a"] - 0.8 * features["b"] - 1.4)))
    return features, (rng.random(count) < p_bad).astype(int)


def _fitted(scale: float) -> LogisticRegression:
    """A logistic regression fitted on the truth, its log-odds multiplied by `scale` (above 1: overconfident)."""
    features, y = _rows(20_000, seed=0)
    model = LogisticRegression().fit(features, y)
    model.coef_, model.intercept_ = model.coef_ * scale, model.intercept_ * scale
    return model


def _outcomes(model: LogisticRegression, seed: int) -> tuple[pd.DataFrame, calibration.Outcomes]:
    features, y = _rows(20_000, seed)
    return features, calibration.Outcomes(y, model.predict_proba(features)[:, 1])


def _threshold(outcomes: calibration.Outcomes) -> float:
    """A score of the validation rows, as threshold selection picks one (ties at the threshold included)."""
    return float(np.sort(outcomes.scores)[int(0.8 * outcomes.scores.size)])


def _checked(scale: float):
    """A model whose log-odds are `scale` times the truth's, its threshold, and its calibration check."""
    model = _fitted(scale=scale)
    _, validation = _outcomes(model, seed=1)
    _, test = _outcomes(model, seed=2)
    threshold = _threshold(validation)
    return model, threshold, calibration.calibrate(model, threshold, validation, test)


def test_overconfident_scores_are_recalibrated_below_tolerance_with_the_same_labels_and_order() -> None:
    model, threshold, checked = _checked(scale=3.0)

    assert checked.validation.needs_recalibration and checked.validation.expected_calibration_error > 2 * TOLERANCE
    assert checked.test.expected_calibration_error > 2 * TOLERANCE
    assert checked.recalibrated and isinstance(checked.model, recalibration.RecalibratedClassifier)
    assert checked.recalibrated_validation.expected_calibration_error < TOLERANCE
    assert not checked.recalibrated_validation.needs_recalibration
    # the test night was not fitted on: calibrated there too, and its precision estimated from the scores
    assert checked.recalibrated_test.expected_calibration_error < TOLERANCE
    after = checked.recalibrated_test
    assert abs(after.estimated_precision - after.realized_precision) < TOLERANCE
    assert abs(checked.test.estimated_precision - checked.test.realized_precision) > TOLERANCE
    # fresh customers: same labels at the mapped threshold, same order, other scores
    fresh, _ = _rows(50_000, seed=3)
    raw = model.predict_proba(fresh)[:, 1]
    calibrated = checked.model.predict_proba(fresh)[:, 1]
    np.testing.assert_array_equal(
        threshold_cut.labels(calibrated, checked.threshold), threshold_cut.labels(raw, threshold)
    )
    by_raw = np.argsort(raw, kind="stable")
    assert (np.diff(calibrated[by_raw]) >= 0).all()
    assert np.abs(calibrated - raw).max() > 0.1
    assert checked.threshold == pytest.approx(float(checked.model.calibrate(np.array([threshold]))[0]))


def test_calibrated_scores_are_kept_as_trained() -> None:
    model, threshold, checked = _checked(scale=1.0)

    assert not checked.recalibrated and checked.model is model and checked.threshold == threshold
    assert checked.recalibrated_validation is None and "kept as trained" in checked.note
    assert checked.metrics()["calibration_recalibrated"] == 0.0
    assert checked.tags()["calibration_recalibrated"] == "false"


def test_scores_that_do_not_rank_outcomes_are_not_recalibrated() -> None:
    model, _, checked = _checked(scale=-2.0)

    assert checked.validation.needs_recalibration and not checked.recalibrated and checked.model is model
    assert "slope" in checked.note and "not positive" in checked.note


def test_the_figures_before_and_after_are_recorded() -> None:
    _, _, checked = _checked(scale=3.0)

    metrics, tags, details = checked.metrics(), checked.tags(), checked.details()
    for prefix in ("calibration_", "calibration_test_", "recalibrated_", "recalibrated_test_"):
        assert f"{prefix}expected_calibration_error" in metrics, prefix
        assert f"{prefix}needs_recalibration" in tags, prefix
    assert metrics["calibration_needs_recalibration"] == 1.0 and metrics["recalibrated_needs_recalibration"] == 0.0
    assert tags["calibration_needs_recalibration"] == "true" and tags["recalibrated_needs_recalibration"] == "false"
    assert tags["calibration_recalibrated"] == "true" and float(tags["calibration_slope"]) == checked.model.slope
    assert 0 < metrics["calibration_slope"] < 1  # overconfident log-odds are shrunk
    assert details["recalibrated"] is True
    assert details["validation"]["expected_calibration_error"] == metrics["calibration_expected_calibration_error"]
    assert "->" in tags["calibration_note"]


def test_platt_keeps_scores_finite_at_zero_and_one() -> None:
    mapped = recalibration.platt(np.array([0.0, 1e-300, 0.5, 1.0]), slope=40.0, intercept=2.0)
    assert np.isfinite(mapped).all() and ((mapped >= 0) & (mapped <= 1)).all()
    assert (np.diff(mapped) >= 0).all()


def test_a_recalibrated_model_fits_its_map_and_is_a_classifier_the_explanations_accept() -> None:
    model = _fitted(scale=3.0)
    features, y = _rows(5_000, seed=4)
    wrapped = recalibration.RecalibratedClassifier(model).fit(features, y)
    assert (wrapped.slope, wrapped.intercept) == recalibration.fit_platt(y, model.predict_proba(features)[:, 1])
    assert 0 < wrapped.slope < 1
    # what `custlabel validate` runs on a registered version (explain.importance and explain.dependence)
    ranked = permutation_importance(wrapped, features, y, scoring="average_precision", n_repeats=2, random_state=0)
    assert ranked.importances_mean[0] > 0
    curve = partial_dependence(wrapped, features, ["a"], kind="average")
    assert np.all(np.diff(curve["average"][0]) > 0)
