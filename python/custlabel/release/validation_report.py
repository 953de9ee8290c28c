"""The HTML validation report of a version: verdicts, metrics, PR curves, fairness, explainability, cost."""

from __future__ import annotations

import html

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve  # noqa: E402

from custlabel import html_pages
from custlabel.gate_verdicts import GateResult, all_passed  # noqa: E402
from custlabel.release.computational_validation import ScoringRun  # noqa: E402
from custlabel.release.explainability import ExplainReport  # noqa: E402
from custlabel.release.fairness import FairnessReport  # noqa: E402
from custlabel.training import evaluate, rule_baseline  # noqa: E402
from custlabel.training.features import LABEL_COLUMN  # noqa: E402

FIGURES = ["precision", "recall", "f1", "roc_auc", "pr_auc", "flagged_rate", "bad_rate", "rows"]


def _curve(ax: plt.Axes, y: np.ndarray, scores: np.ndarray, threshold: float | None, name: str, rule: np.ndarray) -> None:
    for label, values, style in ((name, scores, "-"), ("rule baseline", rule, "--")):
        precision, recall, _ = precision_recall_curve(y, values)
        ax.plot(recall, precision, style, label=f"{label} (AP {average_precision_score(y, values):.3f})")
    if threshold is not None:
        point = evaluate.metrics_at(y, scores, threshold)
        ax.scatter([point.recall], [point.precision], color="black", zorder=3, label=f"threshold {threshold:.3f}")
    ax.set(xlabel="recall of bad", ylabel="precision of bad", xlim=(0, 1), ylim=(0, 1.02), title=name)
    ax.legend(loc="lower left", fontsize=8)


def pr_curves(frame: pd.DataFrame, threshold: float, champion_threshold: float | None, champion_name: str) -> str:
    """Champion and challenger precision-recall curves side by side, the rule baseline on both."""
    y, rule = frame[LABEL_COLUMN].to_numpy(), frame["rule_score"].to_numpy()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    _curve(left, y, frame["champion_score"].to_numpy(), champion_threshold if champion_threshold is not None else rule_baseline.THRESHOLD,
           champion_name, rule)
    _curve(right, y, frame["challenger_score"].to_numpy(), threshold, "challenger (this version)", rule)
    return html_pages.figure(fig, "precision-recall curves")


def metrics_table(frame: pd.DataFrame, threshold: float, champion_threshold: float | None, champion_name: str) -> str:
    """The test night's figures of the version, the champion and the rule baseline at their thresholds."""
    y = frame[LABEL_COLUMN].to_numpy()
    columns = {
        "challenger (this version)": evaluate.metrics_at(y, frame["challenger_score"].to_numpy(), threshold),
        champion_name: evaluate.metrics_at(y, frame["champion_score"].to_numpy(), champion_threshold or rule_baseline.THRESHOLD),
        "rule baseline": evaluate.metrics_at(y, frame["rule_score"].to_numpy(), rule_baseline.THRESHOLD),
    }
    table = pd.DataFrame({name: [getattr(m, key) for key in FIGURES] for name, m in columns.items()}, index=FIGURES)
    return html_pages.table(table)


def champion_name(champion: str | None) -> str:
    """How the report names what the version is judged against."""
    return f"champion (v{champion})" if champion else "no champion: rule baseline"


def sections(
    frame: pd.DataFrame,
    threshold: float,
    champion_threshold: float | None,
    champion_name: str,
    fair: FairnessReport,
    explained: ExplainReport,
    runs: dict[str, ScoringRun] | None,
) -> dict[str, str]:
    """The report's sections after the smoke test, by title (runs: the scorings measured, by role; None: not measured)."""
    computational = (
        "".join(html_pages.text(f"{role}: {run.describe()}") for role, run in runs.items()) if runs
        else html_pages.text("Not measured: the test environment scored in this process (Spark), not in a measured child process.")
    )
    return {
        "Test night metrics": html_pages.text(
            f"{len(frame):,} customers of the test night (sampled deterministically), scored in the test schema."
        ) + metrics_table(frame, threshold, champion_threshold, champion_name),
        "Precision-recall: champion and challenger": pr_curves(frame, threshold, champion_threshold, champion_name),
        "Fairness": fair.html(),
        "Explainability": explained.html(),
        "Computational": computational,
    }


def _verdicts(gates: list[GateResult]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(g.name)}</td><td class='{g.verdict}'>{g.verdict}</td><td>{html.escape(g.reason)}</td></tr>"
        for g in gates
    )
    return f"<table class='figures'><tr><th>gate</th><th>verdict</th><th>why</th></tr>{rows}</table>"


def render(title: str, validated_on: str, gates: list[GateResult], parts: dict[str, str]) -> str:
    """The whole page; without parts (the version failed before its figures) it holds the verdicts only."""
    status = "passed" if all_passed(gates) else "failed"
    head = (
        f"<p class='{status}'>Validation {status} on {html.escape(validated_on)}.</p>"
        f"<h2>Gates</h2>{_verdicts(gates)}"
    )
    if not parts:
        head += html_pages.text("The version failed before the test environment could judge it: see the gates above.")
    body = "".join(f"<h2>{html.escape(title)}</h2>{part}" for title, part in parts.items())
    return html_pages.page(title, head + body)
