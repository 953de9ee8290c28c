"""Reference bins, the calibration check and dbt's run results: pure functions of the monitoring."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from custlabel.monitoring import drift_reference
from custlabel.training import calibration
from custlabel.training.evaluate import EvaluationError
from custlabel.training.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from custlabel.warehouse import dbt_test_history


def test_numeric_bins_are_deciles_with_a_null_bin():
    values = pd.Series([*range(100), None, None])
    bins = drift_reference.numeric_bins("x", values)
    assert [b.bin for b in bins] == list(range(11))
    assert bins[0].reference_rows == 2 and bins[0].lower_edge is None and bins[0].upper_edge is None
    assert [b.reference_rows for b in bins[1:]] == [10] * 10
    assert bins[1].lower_edge is None and bins[1].upper_edge == pytest.approx(9.9)
    assert bins[10].lower_edge == pytest.approx(89.1) and bins[10].upper_edge is None
    assert sum(b.reference_share for b in bins) == pytest.approx(1.0)


def test_equal_deciles_merge_into_one_edge():
    values = pd.Series([0.0] * 80 + list(range(1, 21)))
    bins = drift_reference.numeric_bins("x", values)
    # every decile up to the 8th is 0: one edge there, so the zeros share a bin
    assert bins[1].reference_rows == 0 and bins[2].lower_edge == 0.0 and bins[2].reference_rows == 80


def test_categorical_bins_and_missing_features_are_named():
    bins = drift_reference.categorical_bins("segment", pd.Series(["b", "a", "b", None]))
    assert [(b.bin, b.category, b.reference_rows) for b in bins] == [(0, None, 1), (1, "a", 1), (2, "b", 2)]
    with pytest.raises(drift_reference.ReferenceError, match="lack the feature columns segment"):
        drift_reference.reference_bins(pd.DataFrame({name: [1.0] for name in NUMERIC_FEATURES}))
    with pytest.raises(drift_reference.ReferenceError, match="empty"):
        drift_reference.reference_bins(pd.DataFrame(columns=NUMERIC_FEATURES + CATEGORICAL_FEATURES))


def test_calibrated_scores_need_no_recalibration_and_shifted_ones_do():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, 50_000)
    outcomes = (rng.uniform(0, 1, scores.size) < scores).astype(int)
    calibrated = calibration.check(outcomes, scores, threshold=0.7)
    assert calibrated.expected_calibration_error < 0.01 and not calibrated.needs_recalibration
    assert calibrated.estimated_precision == pytest.approx(calibrated.realized_precision, abs=0.01)
    overconfident = calibration.check(outcomes, np.clip(scores * 1.3, 0, 1), threshold=0.7)
    assert overconfident.expected_calibration_error > 0.05 and overconfident.needs_recalibration
    assert set(overconfident.as_dict()) >= {"calibration_expected_calibration_error", "calibration_needs_recalibration"}


def test_calibration_check_refuses_bad_input():
    with pytest.raises(ValueError, match="y_true has 2 rows and scores 3"):
        calibration.check(np.array([0, 1]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        calibration.check(np.array([0, 1]), np.array([0.1, 1.2]))
    with pytest.raises(EvaluationError, match="only one class"):
        calibration.check(np.array([1, 1]), np.array([0.1, 0.2]))


RUN_RESULTS = {
    "metadata": {"invocation_id": "abc", "generated_at": "2026-07-01T02:03:04.5Z"},
    "results": [
        {"unique_id": "model.custlabel.label_rates", "status": "success", "failures": None, "message": "INSERT 0 3",
         "execution_time": 0.5},
        {"unique_id": "test.custlabel.not_null_label_rates_as_of_date.1a2b", "status": "pass", "failures": 0,
         "message": None, "execution_time": 0.1},
        {"unique_id": "test.custlabel.assert_quarantine_rate_within_bound", "status": "fail", "failures": 2,
         "message": "Got 2 results", "execution_time": 0.2},
        {"unique_id": "unit_test.custlabel.label_rates.label_rates_per_night_and_version", "status": "pass",
         "failures": 0, "message": None, "execution_time": 0.3},
    ],
}


def test_run_results_keep_tests_only(tmp_path):
    path = tmp_path / "run_results.json"
    path.write_text(json.dumps(RUN_RESULTS))
    results = dbt_test_history.read(path)
    assert results.invocation_id == "abc" and results.generated_at.tzinfo is not None
    assert [(t.test_name, t.test_kind, t.status, t.failures) for t in results.tests] == [
        ("not_null_label_rates_as_of_date", "data_test", "pass", 0),
        ("assert_quarantine_rate_within_bound", "data_test", "fail", 2),
        ("label_rates_per_night_and_version", "unit_test", "pass", 0),
    ]


def test_stale_missing_or_foreign_run_results_are_refused(tmp_path):
    path = tmp_path / "run_results.json"
    with pytest.raises(dbt_test_history.RunResultsError, match="does not exist"):
        dbt_test_history.read(path)
    path.write_text(json.dumps(RUN_RESULTS))
    with pytest.raises(dbt_test_history.RunResultsError, match="before this build started"):
        dbt_test_history.read(path, since=datetime(2026, 7, 2, tzinfo=timezone.utc))
    path.write_text('{"results": []}')
    with pytest.raises(dbt_test_history.RunResultsError, match="not what dbt writes"):
        dbt_test_history.read(path)
