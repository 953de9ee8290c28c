"""Operating points and metrics for the "bad" label: threshold choice, test figures, plots."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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

from custlabel import label_rule  # noqa: E402
from custlabel.errors import CustlabelError  # noqa: E402

POLICY_FLOOR = "max_recall_at_precision"
POLICY_FALLBACK = "max_precision_at_recall"


class EvaluationError(CustlabelError):
    """The labels cannot support an evaluation (empty, or a single class)."""


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and what it achieved on the data it was chosen on."""

    threshold: float
    precision: float
    recall: float
    policy: str
    meets_precision: bool
    meets_recall: bool


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


def _curve(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    precision, recall, thresholds = precision_recall_curve(y, scores)
    # The curve's last point (precision 1, recall 0) has no threshold.
    return precision[:-1], recall[:-1], thresholds


def choose_threshold(
    y: np.ndarray, scores: np.ndarray, min_precision: float, min_recall: float
) -> OperatingPoint:
    """The highest-recall threshold with precision >= min_precision.

    When no threshold reaches the precision floor, fall back to the highest
    precision among thresholds with recall >= min_recall (the business measure:
    precision at an agreed minimum recall); that operating point fails acceptance.
    """
    check_labels(y, "validation period")
    precision, recall, thresholds = _curve(np.asarray(y), np.asarray(scores))
    floor = precision >= min_precision
    if floor.any():
        candidates = np.flatnonzero(floor)
        best = candidates[np.lexsort((-precision[candidates], -recall[candidates]))[0]]
        policy = POLICY_FLOOR
    else:
        candidates = np.flatnonzero(recall >= min_recall)
        best = candidates[np.lexsort((-recall[candidates], -precision[candidates]))[0]]
        policy = POLICY_FALLBACK
    return OperatingPoint(
        threshold=float(thresholds[best]),
        precision=float(precision[best]),
        recall=float(recall[best]),
        policy=policy,
        meets_precision=bool(precision[best] >= min_precision),
        meets_recall=bool(recall[best] >= min_recall),
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
    return metrics_for_labels(y, label_rule.is_bad(scores, threshold), scores)


def precision_at_recall(y: np.ndarray, scores: np.ndarray, recall: float) -> float:
    """The best precision of a ranking by score among thresholds reaching at least this recall."""
    y = np.asarray(y).astype(int)
    check_labels(y, "ranking")
    precision, achieved, _ = _curve(y, np.asarray(scores))
    return float(precision[achieved >= recall].max())


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
