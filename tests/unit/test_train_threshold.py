"""The operating point: max recall under the precision floor, the documented fallback, and test figures."""

import numpy as np
import pytest

from custlabel import evaluate

# Ranked scores: flagging the top k gives these labels in order.
SCORES = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
LABELS = np.array([1, 1, 1, 0, 1, 1, 0, 0, 1, 0])


def test_highest_recall_that_keeps_the_precision_floor() -> None:
    point = evaluate.choose_threshold(LABELS, SCORES, min_precision=0.8, min_recall=0.3)
    # top 6: 5 bad of 6 = 0.833 precision, recall 5/6; top 9 would be 6/9 = 0.667
    assert point.threshold == pytest.approx(0.6)
    assert point.precision == pytest.approx(5 / 6)
    assert point.recall == pytest.approx(5 / 6)
    assert point.policy == evaluate.POLICY_FLOOR
    assert point.meets_precision and point.meets_recall


def test_fallback_when_the_floor_cannot_be_met_maximises_precision_at_min_recall() -> None:
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 0, 1, 0])
    point = evaluate.choose_threshold(labels, SCORES, min_precision=0.9, min_recall=0.5)
    assert point.policy == evaluate.POLICY_FALLBACK
    assert not point.meets_precision
    assert point.recall >= 0.5
    # among thresholds with recall >= 0.5 the best precision is 2/4 (top 4) or 3/6 (top 6): ties go to recall
    assert point.precision == pytest.approx(0.5)
    assert point.recall == pytest.approx(0.75)


def test_one_flagged_customer_does_not_game_the_measure() -> None:
    # precision 1.0 is reachable by flagging the top customer alone, but recall decides
    point = evaluate.choose_threshold(LABELS, SCORES, min_precision=1.0, min_recall=0.5)
    assert point.precision == 1.0 and point.recall == pytest.approx(0.5)
    assert point.meets_recall


def test_metrics_and_confusion_matrix_at_a_threshold() -> None:
    metrics = evaluate.metrics_at(LABELS, SCORES, 0.6)
    assert (metrics.tn, metrics.fp, metrics.fn, metrics.tp) == (3, 1, 1, 5)
    assert metrics.precision == pytest.approx(5 / 6)
    assert metrics.recall == pytest.approx(5 / 6)
    assert metrics.f1 == pytest.approx(5 / 6)
    assert 0.5 < metrics.roc_auc <= 1 and 0.5 < metrics.pr_auc <= 1
    assert metrics.as_dict("test_")["test_tp"] == 5.0


def test_precision_at_recall_reads_the_ranking() -> None:
    assert evaluate.precision_at_recall(LABELS, SCORES, 0.5) == 1.0
    assert evaluate.precision_at_recall(LABELS, SCORES, 1.0) == pytest.approx(6 / 9)


def test_one_class_or_empty_labels_are_refused() -> None:
    with pytest.raises(evaluate.EvaluationError, match="only one class"):
        evaluate.choose_threshold(np.zeros(5), np.linspace(0, 1, 5), 0.8, 0.3)
    with pytest.raises(evaluate.EvaluationError, match="has no rows"):
        evaluate.metrics_at(np.array([]), np.array([]), 0.5)
