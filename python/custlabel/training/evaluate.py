"""Operating points and metrics for the "bad" label: threshold choice, test figures, plots."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
)

from custlabel.errors import CustlabelError  # noqa: E402
from custlabel.training import threshold_cut  # noqa: E402
from custlabel.training.acceptance import Performance  # noqa: E402

POLICY_FLOOR = "max_recall_at_precision"
POLICY_RECALL_FLOOR = "max_precision_at_recall"
POLICY_FIXED_SHARE = "fixed_share"
POLICIES = (POLICY_FLOOR, POLICY_RECALL_FLOOR, POLICY_FIXED_SHARE)


class EvaluationError(CustlabelError):
    """The labels cannot support an evaluation (empty, or a single class)."""


@dataclass(frozen=True)
class Constraints:
    """What an operating point must meet: floors on precision, recall and lift, a cap on the share labelled bad."""

    min_precision: float
    min_recall: float
    min_lift: float = 1.0
    max_share: float = 1.0

    def describe(self) -> str:
        return (
            f"precision >= {self.min_precision:.2f}, recall >= {self.min_recall:.2f}, "
            f"lift >= {self.min_lift:.2f}, share labelled bad <= {self.max_share:.2f}"
        )


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and what it achieved on the data it was chosen on.

    `feasible` says whether it met every constraint; when no threshold did, the
    point is the closest one (the best precision at the recall floor) and
    `reason` says what could not be met.
    """

    threshold: float
    precision: float
    recall: float
    share: float
    lift: float
    policy: str
    feasible: bool
    reason: str

    @property
    def objective(self) -> float:
        """What the policy maximised: recall at a precision floor, else precision."""
        return self.recall if self.policy == POLICY_FLOOR else self.precision


@dataclass(frozen=True)
class Metrics:
    """Figures of the "bad" label at one threshold."""

    precision: float
    recall: float
    f1: float
    roc_auc: float
    pr_auc: float
    tn: int
    fp: int
    fn: int
    tp: int
    rows: int
    bad_rate: float
    flagged_rate: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{key}": float(value) for key, value in asdict(self).items()}

    def as_tags(self, prefix: str = "") -> dict[str, str]:
        """The headline figures and the confusion matrix as registry tags."""
        tags = {f"{prefix}{key}": f"{getattr(self, key):.4f}" for key in ("precision", "recall", "f1", "roc_auc", "pr_auc")}
        tags[f"{prefix}confusion_matrix"] = f"tn={self.tn} fp={self.fp} fn={self.fn} tp={self.tp}"
        return tags


def check_labels(y: np.ndarray, what: str) -> None:
    """Fail clearly when labels are empty or hold one class only."""
    y = np.asarray(y)
    if y.size == 0:
        raise EvaluationError(f"the {what} has no rows")
    classes = np.unique(y)
    if classes.size < 2:
        raise EvaluationError(
            f"the {what} has only one class (is_bad = {int(classes[0])} on all {y.size} rows)"
        )


@dataclass(frozen=True)
class Curve:
    """Every distinct threshold of a ranking (descending) with what labelling `score >= threshold` achieves."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    share: np.ndarray
    base_rate: float

    @property
    def lift(self) -> np.ndarray:
        return self.precision / self.base_rate

    @classmethod
    def of(cls, y: np.ndarray, scores: np.ndarray) -> Curve:
        y, scores = np.asarray(y).astype(int), np.asarray(scores, dtype=float)
        order = np.argsort(-scores, kind="stable")
        ranked, hits = scores[order], y[order]
        # The last row of each run of equal scores: a threshold labels all of a tie or none.
        ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
        flagged = ends + 1
        tp = np.cumsum(hits)[ends]
        return cls(ranked[ends], tp / flagged, tp / hits.sum(), flagged / y.size, float(hits.mean()))

    def point(self, index: int, policy: str, constraints: Constraints, reason: str = "") -> OperatingPoint:
        lift = float(self.lift[index])
        feasible = bool(
            self.precision[index] >= constraints.min_precision
            and self.recall[index] >= constraints.min_recall
            and lift >= constraints.min_lift
            and self.share[index] <= constraints.max_share
        )
        return OperatingPoint(
            threshold=float(self.thresholds[index]),
            precision=float(self.precision[index]),
            recall=float(self.recall[index]),
            share=float(self.share[index]),
            lift=lift,
            policy=policy,
            feasible=feasible,
            reason=reason or describe_point(self, index),
        )


def describe_point(curve: Curve, index: int) -> str:
    """One point of a curve in words."""
    return (
        f"precision {curve.precision[index]:.3f}, recall {curve.recall[index]:.3f}, lift {curve.lift[index]:.2f} "
        f"over base rate {curve.base_rate:.3f}, {curve.share[index]:.1%} labelled bad"
    )


def choose_threshold(
    y: np.ndarray, scores: np.ndarray, constraints: Constraints, policy: str = POLICY_FLOOR, share: float | None = None
) -> OperatingPoint:
    """The threshold a policy chooses among those meeting every constraint.

    max_recall_at_precision: the highest recall (ties: higher precision);
    max_precision_at_recall: the highest precision (ties: higher recall);
    fixed_share: the lowest threshold labelling at most `share` of the rows bad (top-k).
    When no threshold meets the constraints, the point returned is not feasible:
    the best precision at the recall floor, with the reason in words.
    """
    check_labels(y, "validation period")
    if policy not in POLICIES:
        raise EvaluationError(f"unknown threshold policy {policy!r}: expected one of {', '.join(POLICIES)}")
    curve = Curve.of(y, scores)
    if policy == POLICY_FIXED_SHARE:
        if share is None:
            raise EvaluationError("the fixed_share policy needs the share of customers to label bad")
        within = np.flatnonzero(curve.share <= share)
        index = int(within[-1]) if within.size else 0
        point = curve.point(index, policy, constraints)
        if point.feasible:
            return point
        return replace(point, reason=f"labelling the top {share:.1%} bad gives {describe_point(curve, index)}; "
                                     f"it does not meet {constraints.describe()}")
    feasible = np.flatnonzero(
        (curve.precision >= constraints.min_precision)
        & (curve.recall >= constraints.min_recall)
        & (curve.lift >= constraints.min_lift)
        & (curve.share <= constraints.max_share)
    )
    if feasible.size:
        first, second = (curve.recall, curve.precision) if policy == POLICY_FLOOR else (curve.precision, curve.recall)
        index = int(feasible[np.lexsort((-second[feasible], -first[feasible]))[0]])
        return curve.point(index, policy, constraints)
    at_recall = np.flatnonzero(curve.recall >= constraints.min_recall)
    index = int(at_recall[np.lexsort((-curve.recall[at_recall], -curve.precision[at_recall]))[0]])
    return curve.point(
        index,
        policy,
        constraints,
        reason=f"no threshold meets {constraints.describe()} together; the best precision at the recall floor is "
        f"{describe_point(curve, index)}",
    )


def metrics_for_labels(y: np.ndarray, flagged: np.ndarray, scores: np.ndarray) -> Metrics:
    """Precision, recall, F1, ROC AUC, PR AUC and the confusion matrix of given labels."""
    y = np.asarray(y).astype(int)
    check_labels(y, "test period")
    flagged = np.asarray(flagged).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, flagged, labels=[0, 1]).ravel())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Metrics(
        precision=precision,
        recall=recall,
        f1=f1,
        roc_auc=float(roc_auc_score(y, scores)),
        pr_auc=float(average_precision_score(y, scores)),
        tn=tn,
        fp=fp,
        fn=fn,
        tp=tp,
        rows=int(y.size),
        bad_rate=float(y.mean()),
        flagged_rate=float(flagged.mean()),
    )


def metrics_at(y: np.ndarray, scores: np.ndarray, threshold: float) -> Metrics:
    """Metrics of the labels the rule gives these scores at this threshold."""
    scores = np.asarray(scores)
    return metrics_for_labels(y, threshold_cut.is_bad(scores, threshold), scores)


def precision_at_recall(y: np.ndarray, scores: np.ndarray, recall: float) -> float:
    """The best precision of a ranking by score among thresholds reaching at least this recall."""
    y = np.asarray(y).astype(int)
    check_labels(y, "ranking")
    curve = Curve.of(y, scores)
    return float(curve.precision[curve.recall >= recall].max())


def plot_precision_recall(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], point: tuple[float, float], path: Path
) -> Path:
    """Precision-recall curves (name -> (y, scores)) with the chosen operating point marked."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, (y, scores) in curves.items():
        precision, recall, _ = precision_recall_curve(y, scores)
        ax.plot(recall, precision, label=f"{name} (AP {average_precision_score(y, scores):.3f})")
    ax.scatter([point[1]], [point[0]], color="black", zorder=3, label="chosen threshold")
    ax.set(
        xlabel="recall of bad", ylabel="precision of bad", xlim=(0, 1), ylim=(0, 1.02), title="Test period"
    )
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_calibration(y: np.ndarray, scores: np.ndarray, path: Path, bins: int = 10) -> Path:
    """Reliability diagram: predicted probability of bad against the observed bad rate."""
    observed, predicted = calibration_curve(y, scores, n_bins=bins, strategy="quantile")
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", label="model")
    ax.set(
        xlabel="predicted probability of bad", ylabel="observed bad rate", title="Calibration (test period)"
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def validation_constraints(performance: Performance) -> Constraints:
    """What the threshold must meet on validation (precision and share with their margin)."""
    return Constraints(
        performance.validation_precision, performance.min_recall, performance.min_lift, performance.validation_bad_share
    )


def business_threshold(y: np.ndarray, scores: np.ndarray, performance: Performance) -> OperatingPoint:
    """The business's threshold policy applied to validation rows."""
    return choose_threshold(
        y, scores, validation_constraints(performance), performance.threshold_policy, performance.fixed_share
    )
