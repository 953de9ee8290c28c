"""The ML performance gates of a version: operating point, absolute floors, the rule baseline and the champion.

Every comparison is on the same test rows. Against the rule baseline the model
is read at the rule's recall: the precision of the model's ranking at the
smallest threshold that catches at least as many bad customers as the rule's
labels do, against the rule's precision (would the model, catching as many bad
customers, be more often right?). Against the champion each version is read at
its own threshold, the labels each would publish, within `relative_to_champion`.
Each difference comes with a paired bootstrap interval over the test rows (same
resampled rows for both sides, fixed seed); the gate decides on the measured
difference, the interval is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from custlabel.gate_verdicts import GateResult
from custlabel.training import evaluate, threshold_cut
from custlabel.training.acceptance import AcceptanceCriteria, Performance

RESAMPLES = 300
SEED = 0
CONFIDENCE = 0.95


def operating_point_gate(point: evaluate.OperatingPoint) -> GateResult:
    """Whether the validation period had a threshold meeting every criterion."""
    figures = {
        "policy": point.policy,
        "threshold": point.threshold,
        "precision": point.precision,
        "recall": point.recall,
        "lift": point.lift,
        "share": point.share,
    }
    return GateResult("operating_point", point.feasible, f"{point.policy} on validation: {point.reason}", figures)


class _Rows:
    """Test rows seen through bootstrap weights: weighted precision of fixed labels and of a ranking."""

    def __init__(self, y: np.ndarray) -> None:
        self.y = np.asarray(y).astype(int)

    def labelled(self, weights: np.ndarray, flagged: np.ndarray) -> tuple[float, float]:
        """(precision, recall) of fixed labels."""
        hits = float(np.sum(weights * self.y * flagged))
        chosen, positives = float(np.sum(weights * flagged)), float(np.sum(weights * self.y))
        return (hits / chosen if chosen else 0.0), (hits / positives if positives else 0.0)


class _Ranking:
    """A ranking by score, sorted once; its precision at a recall under any bootstrap weights."""

    def __init__(self, y: np.ndarray, scores: np.ndarray) -> None:
        order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
        ranked = np.asarray(scores, dtype=float)[order]
        self.order, self.y = order, np.asarray(y).astype(int)[order]
        self.ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])

    def precision_at_recall(self, weights: np.ndarray, recall: float) -> float:
        w = weights[self.order]
        hits = np.cumsum(w * self.y)[self.ends]
        chosen = np.cumsum(w)[self.ends]
        if hits[-1] == 0:
            return 0.0
        reached = hits / hits[-1] >= recall
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(chosen > 0, hits / chosen, 0.0)
        return float(precision[reached].max())


@dataclass(frozen=True)
class Interval:
    """A measured difference and its bootstrap interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:+.3f} ({CONFIDENCE:.0%} CI {self.low:+.3f}..{self.high:+.3f})"


def _bootstrap(size: int, resamples: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.bincount(rng.integers(0, size, size), minlength=size).astype(float) for _ in range(resamples)]


def _interval(value: float, samples: list[float]) -> Interval:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(value, float(low), float(high))


def absolute_gates(y: np.ndarray, model_scores: np.ndarray, threshold: float, performance: Performance) -> list[GateResult]:
    """Precision and recall floors, lift over the base rate, and the share labelled bad, on the test rows."""
    metrics = evaluate.metrics_at(y, model_scores, threshold)
    lift = metrics.precision / metrics.bad_rate
    figures = {"precision": metrics.precision, "recall": metrics.recall, "lift": lift,
               "share": metrics.flagged_rate, "base_rate": metrics.bad_rate, "rows": metrics.rows}
    checks = [
        ("precision", metrics.precision >= performance.min_precision,
         f"test precision {metrics.precision:.3f} (floor {performance.min_precision:.2f})"),
        ("recall", metrics.recall >= performance.min_recall,
         f"test recall {metrics.recall:.3f} (floor {performance.min_recall:.2f})"),
        ("lift", lift >= performance.min_lift,
         f"test lift {lift:.2f}: precision {metrics.precision:.3f} over base rate {metrics.bad_rate:.3f} "
         f"(floor {performance.min_lift:.2f})"),
        ("label_share", metrics.flagged_rate <= performance.max_bad_share,
         f"{metrics.flagged_rate:.1%} of test customers labelled bad (at most {performance.max_bad_share:.0%})"),
    ]
    return [GateResult(name, bool(passed), reason, figures) for name, passed, reason in checks]


def baseline_gate(
    y: np.ndarray,
    model_scores: np.ndarray,
    baseline_scores: np.ndarray | None,
    baseline_threshold: float,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> GateResult:
    """The model's precision at the rule's recall beats the rule's precision, on the same rows."""
    if baseline_scores is None or np.isnan(np.asarray(baseline_scores, dtype=float)).any():
        return GateResult("beats_baseline", False, "the rule baseline has no scores on the test rows: run dbt build")
    rows, ranking = _Rows(y), _Ranking(y, model_scores)
    flagged = threshold_cut.is_bad(np.asarray(baseline_scores, dtype=float), baseline_threshold).astype(float)

    def difference(weights: np.ndarray) -> tuple[float, float, float]:
        rule_precision, rule_recall = rows.labelled(weights, flagged)
        model_precision = ranking.precision_at_recall(weights, rule_recall)
        return model_precision - rule_precision, model_precision, rule_precision

    gain, model_precision, rule_precision = difference(np.ones(len(rows.y)))
    rule_recall = rows.labelled(np.ones(len(rows.y)), flagged)[1]
    interval = _interval(gain, [difference(w)[0] for w in _bootstrap(len(rows.y), resamples, seed)])
    reason = (
        f"at the rule's recall {rule_recall:.3f} the model's precision is {model_precision:.3f} against the rule's "
        f"{rule_precision:.3f}: {interval}, {resamples} paired resamples"
    )
    figures = {"rule_recall": rule_recall, "model_precision": model_precision, "rule_precision": rule_precision,
               "gain": gain, "gain_ci_low": interval.low, "gain_ci_high": interval.high, "resamples": resamples}
    return GateResult("beats_baseline", gain > 0, reason, figures)


def champion_gate(
    y: np.ndarray,
    model_scores: np.ndarray,
    threshold: float,
    champion_scores: np.ndarray | None,
    champion_threshold: float | None,
    criteria: AcceptanceCriteria,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> GateResult:
    """The version is not worse than the champion beyond `relative_to_champion`, each at its own threshold."""
    if champion_scores is None or champion_threshold is None:
        return GateResult("vs_champion", True, "no champion yet: nothing to compare with")
    bounds = criteria.relative_to_champion
    rows = _Rows(y)
    mine = threshold_cut.is_bad(np.asarray(model_scores, dtype=float), threshold).astype(float)
    theirs = threshold_cut.is_bad(np.asarray(champion_scores, dtype=float), champion_threshold).astype(float)

    def differences(weights: np.ndarray) -> tuple[float, float]:
        (p_mine, r_mine), (p_theirs, r_theirs) = rows.labelled(weights, mine), rows.labelled(weights, theirs)
        return p_mine - p_theirs, r_mine - r_theirs

    precision_change, recall_change = differences(np.ones(len(rows.y)))
    samples = [differences(w) for w in _bootstrap(len(rows.y), resamples, seed)]
    precision = _interval(precision_change, [s[0] for s in samples])
    recall = _interval(recall_change, [s[1] for s in samples])
    passed = precision_change >= -bounds.max_precision_drop and recall_change >= -bounds.max_recall_drop
    reason = (
        f"against the champion on the same rows: precision {precision} (may drop {bounds.max_precision_drop:.2f}), "
        f"recall {recall} (may drop {bounds.max_recall_drop:.2f}), {resamples} paired resamples"
    )
    figures = {
        "precision_change": precision_change, "precision_ci_low": precision.low, "precision_ci_high": precision.high,
        "recall_change": recall_change, "recall_ci_low": recall.low, "recall_ci_high": recall.high,
        "resamples": resamples,
    }
    return GateResult("vs_champion", bool(passed), reason, figures)


def performance_gates(
    y: np.ndarray,
    model_scores: np.ndarray,
    threshold: float,
    baseline_scores: np.ndarray | None,
    baseline_threshold: float,
    champion_scores: np.ndarray | None,
    champion_threshold: float | None,
    criteria: AcceptanceCriteria,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> list[GateResult]:
    """Every ML gate on one set of test rows: the absolute criteria, the rule baseline, the champion.

    Args:
        y: is_bad of the test rows; the score arrays are aligned with it.
        baseline_scores: the rule's scores on the rows (None: not built, the gate fails).
        champion_scores, champion_threshold: None when there is no champion (the gate passes).
    """
    evaluate.check_labels(y, "test period")
    return [
        *absolute_gates(y, model_scores, threshold, criteria.performance),
        baseline_gate(y, model_scores, baseline_scores, baseline_threshold, resamples, seed),
        champion_gate(y, model_scores, threshold, champion_scores, champion_threshold, criteria, resamples, seed),
    ]
