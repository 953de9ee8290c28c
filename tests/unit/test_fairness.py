"""Fairness figures per group agree with fairlearn's MetricFrame; the gates refuse a gap and skip small groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custlabel.release import fairness
from custlabel.training.acceptance import Fairness

CRITERIA = Fairness(attributes=["gender"], min_group_size=100, max_precision_gap=0.15, min_selection_rate_ratio=0.5)


def _labels(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    rng = np.random.default_rng(seed)
    groups = pd.Series(rng.choice(["female", "male", "other"], rows, p=[0.49, 0.49, 0.02]))
    y = rng.random(rows) < 0.3
    flagged = np.where(y, rng.random(rows) < 0.7, rng.random(rows) < 0.1)
    return y.astype(int), flagged.astype(int), groups


def test_group_figures_match_fairlearn_metricframe():
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate
    from sklearn.metrics import precision_score, recall_score

    y, flagged, groups = _labels(3000)
    table = fairness.group_table(y, flagged, groups, n_boot=50)
    frame = MetricFrame(
        metrics={"precision": precision_score, "recall": recall_score, "selection_rate": selection_rate,
                 "false_positive_rate": false_positive_rate},
        y_true=y, y_pred=flagged, sensitive_features=groups,
    )
    for metric in fairness.METRICS:
        for group in ("female", "male", "other"):
            assert table.loc[group, metric] == pytest.approx(frame.by_group.loc[group, metric])
        assert table.loc[fairness.OVERALL, metric] == pytest.approx(frame.overall[metric])
    assert (table["precision_low"] <= table["precision"]).all() and (table["precision"] <= table["precision_high"]).all()
    # the small group's interval is wider than a large group's
    width = table["precision_high"] - table["precision_low"]
    assert width["other"] > 2 * width["female"]


def test_a_group_treated_worse_fails_the_gate():
    y, flagged, groups = _labels(4000, seed=1)
    # men who are good are flagged three times as often: their precision drops
    rng = np.random.default_rng(2)
    flagged = np.where((groups == "male") & (y == 0) & (rng.random(len(y)) < 0.3), 1, flagged)
    table = fairness.group_table(y, flagged, groups, n_boot=50)
    gate = fairness.judge("gender", table, CRITERIA)
    assert not gate.passed and gate.gated
    assert "gap" in gate.reason and gate.figures["max_precision_gap"] > CRITERIA.max_precision_gap
    assert table.loc["male", "precision_high"] < table.loc["female", "precision_low"]


def test_small_groups_are_shown_not_gated():
    y, flagged, groups = _labels(4000, seed=3)
    # the 2% 'other' group is flagged for nobody: it would fail the ratio if it were gated
    flagged = np.where(groups == "other", 0, flagged)
    table = fairness.group_table(y, flagged, groups, n_boot=50)
    gate = fairness.judge("gender", table, CRITERIA)
    assert gate.passed, gate.reason
    assert gate.figures["small_groups"] == ["other"]
    assert "shown, not gated (under 100 customers): other" in gate.reason
    assert table.loc["other", "selection_rate"] == 0.0


def test_report_has_a_section_per_attribute_with_a_plot():
    y, flagged, groups = _labels(2000)
    frame = pd.DataFrame({"gender": groups, "country": np.where(np.arange(2000) % 2, "FR", None)})
    criteria = CRITERIA.model_copy(update={"attributes": ["gender", "country"]})
    report = fairness.report(frame, flagged, y, criteria, n_boot=20)
    assert [gate.name for gate in report.gates] == ["fairness_gender", "fairness_country"]
    assert "unknown" in report.tables["country"].index
    page = report.html()
    assert page.count("data:image/png;base64,") == 2 and "<h3>country</h3>" in page


def test_customers_whose_attribute_is_unknown_are_shown_not_gated():
    """On a test night, customers gone from master data tonight have no attribute and are mostly bad."""
    y, flagged, groups = _labels(4000, seed=4)
    gone = np.arange(len(y)) % 4 == 0
    groups = groups.where(~gone, None)
    y = np.where(gone, 1, y)  # every one of them turned out bad: their precision is 1, far above the rest
    table = fairness.group_table(y, flagged, groups, n_boot=50)
    assert table.loc["unknown", "precision"] - table.loc[fairness.OVERALL, "precision"] > CRITERIA.max_precision_gap
    gate = fairness.judge("gender", table, CRITERIA)
    assert gate.passed, gate.reason
    assert "unknown" not in gate.figures["gated_groups"]
    assert f"shown, not gated: unknown (gender not known, {int(gone.sum()):,} customers)" in gate.reason


def _flagged_at(groups: pd.Series, rates: dict[str, float], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes at a 30% base rate and "bad" labels drawn at each group's rate, independent of the outcome."""
    rng = np.random.default_rng(seed)
    y = (rng.random(len(groups)) < 0.3).astype(int)
    flagged = (rng.random(len(groups)) < groups.map(rates).to_numpy()).astype(int)
    return y, flagged


def test_a_group_labelled_bad_far_more_often_than_the_population_fails():
    """"bad" is the adverse label: the four-fifths rule applies to being labelled bad, a group's rate at most overall / 0.5."""
    groups = pd.Series(np.random.default_rng(5).choice(["female", "male", "other"], 6000, p=[0.45, 0.45, 0.10]))
    y, flagged = _flagged_at(groups, {"female": 0.10, "male": 0.10, "other": 0.60}, seed=6)
    table = fairness.group_table(y, flagged, groups, n_boot=50)
    assert table.loc["other", "selection_rate"] / table.loc[fairness.OVERALL, "selection_rate"] > 1 / CRITERIA.min_selection_rate_ratio
    gate = fairness.judge("gender", table, CRITERIA)
    assert not gate.passed and gate.gated
    assert gate.figures["most_labelled_bad_group"] == "other" and gate.figures["max_selection_rate_ratio"] > 2.0
    assert "gender=other is labelled bad at 4." in gate.reason and "times the overall rate (> 2.00 = 1/0.5)" in gate.reason


def test_a_group_labelled_bad_less_often_passes_and_both_directions_are_reported():
    groups = pd.Series(np.random.default_rng(7).choice(["female", "male"], 6000, p=[0.5, 0.5]))
    y, flagged = _flagged_at(groups, {"female": 0.05, "male": 0.25}, seed=8)
    table = fairness.group_table(y, flagged, groups, n_boot=50)
    ratio = table.loc["female", "selection_rate"] / table.loc[fairness.OVERALL, "selection_rate"]
    assert ratio < CRITERIA.min_selection_rate_ratio  # the old gate failed a group for being labelled bad less often
    gate = fairness.judge("gender", table, CRITERIA)
    assert gate.passed, gate.reason
    assert gate.figures["least_labelled_bad_group"] == "female" and gate.figures["min_selection_rate_ratio"] == pytest.approx(ratio)
    assert gate.figures["most_labelled_bad_group"] == "male"
    assert f"labelled bad from {ratio:.2f} (gender=female) to" in gate.reason
    assert "times the overall rate (at most 2.00 = 1/0.5)" in gate.reason
