"""The operating point: the three threshold policies, infeasible floors said in words, and test figures."""

import numpy as np
import pytest

from custlabel.training import evaluate

# Ranked scores: flagging the top k gives these labels in order.
SCORES = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
LABELS = np.array([1, 1, 1, 0, 1, 1, 0, 0, 1, 0])


def floors(min_precision: float, min_recall: float, **bounds: float) -> evaluate.Constraints:
    return evaluate.Constraints(min_precision, min_recall, **bounds)


def test_highest_recall_that_keeps_the_precision_floor() -> None:
    point = evaluate.choose_threshold(LABELS, SCORES, floors(0.8, 0.3))
    # top 6: 5 bad of 6 = 0.833 precision, recall 5/6; top 9 would be 6/9 = 0.667
    assert point.threshold == pytest.approx(0.6)
    assert point.precision == pytest.approx(5 / 6)
    assert point.recall == pytest.approx(5 / 6)
    assert point.share == pytest.approx(0.6)
    assert point.lift == pytest.approx((5 / 6) / 0.6)
    assert point.policy == evaluate.POLICY_FLOOR
    assert point.feasible


def test_highest_precision_at_the_recall_floor() -> None:
    point = evaluate.choose_threshold(LABELS, SCORES, floors(0.5, 0.6), evaluate.POLICY_RECALL_FLOOR)
    # recall >= 0.6 needs 4 of 6 bad: the top 5 (4/5) is the most precise way; top 6 is 5/6 = 0.833, better still
    assert point.precision == pytest.approx(5 / 6) and point.recall == pytest.approx(5 / 6)
    assert point.feasible and point.policy == evaluate.POLICY_RECALL_FLOOR


def test_fixed_share_labels_the_top_of_the_ranking() -> None:
    point = evaluate.choose_threshold(LABELS, SCORES, floors(0.5, 0.3), evaluate.POLICY_FIXED_SHARE, share=0.3)
    assert point.threshold == pytest.approx(0.85) and point.share == pytest.approx(0.3)
    assert point.precision == 1.0 and point.feasible


def test_no_threshold_meeting_the_floors_is_not_feasible_and_says_why() -> None:
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 0, 1, 0])
    point = evaluate.choose_threshold(labels, SCORES, floors(0.9, 0.5))
    assert not point.feasible
    assert point.recall >= 0.5
    # among thresholds with recall >= 0.5 the best precision is 2/4 (top 4) or 3/6 (top 6): ties go to recall
    assert point.precision == pytest.approx(0.5)
    assert point.recall == pytest.approx(0.75)
    assert "no threshold meets precision >= 0.90, recall >= 0.50" in point.reason


def test_labelling_almost_everyone_is_refused_when_the_base_rate_is_above_the_floor() -> None:
    # 80% bad and an uninformative ranking: labelling everyone meets a 0.70 precision floor
    rng = np.random.default_rng(3)
    labels = (rng.random(2_000) < 0.8).astype(int)
    scores = rng.random(2_000)
    everyone = evaluate.choose_threshold(labels, scores, floors(0.70, 0.30))
    assert everyone.feasible and everyone.share > 0.99
    with_lift = evaluate.choose_threshold(labels, scores, floors(0.70, 0.30, min_lift=1.1))
    with_share = evaluate.choose_threshold(labels, scores, floors(0.70, 0.30, max_share=0.5))
    assert not with_lift.feasible and "lift >= 1.10" in with_lift.reason
    # a capacity alone caps the share, but only lift says the label knows something
    assert with_share.share <= 0.5 and with_share.lift < 1.1


def test_one_flagged_customer_does_not_game_the_measure() -> None:
    # precision 1.0 is reachable by flagging the top customer alone, but recall decides
    point = evaluate.choose_threshold(LABELS, SCORES, floors(1.0, 0.5))
    assert point.precision == 1.0 and point.recall == pytest.approx(0.5)
    assert point.feasible


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
        evaluate.choose_threshold(np.zeros(5), np.linspace(0, 1, 5), floors(0.8, 0.3))
    with pytest.raises(evaluate.EvaluationError, match="has no rows"):
        evaluate.metrics_at(np.array([]), np.array([]), 0.5)
