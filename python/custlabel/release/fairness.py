"""Fairness report: per sensitive attribute, each group's precision, recall, selection rate and false positive rate.

Figures come from each group's confusion counts (true/false bad, missed, true good), with
95% bootstrap intervals. Resampling customers with replacement is a multinomial draw
over the (group, cell) counts, so a bootstrap sample costs O(groups), not O(customers):
fairlearn's MetricFrame gives the same figures (tests/unit/test_fairness.py checks it)
but took 19 s for one frame of 200,000 rows and 190 s with 10 bootstrap samples here.

Gates (acceptance.yml `fairness`), over groups of at least `min_group_size` customers
(smaller groups are shown, not gated; so is `unknown`, the customers whose attribute
is not known, which is a state of the data rather than a group of people: on a test
night it gathers the customers no longer in master data tonight, mostly bad ones):
every group's precision within
`max_precision_gap` of the overall precision, and no group labelled "bad" (the adverse
label) more than 1 / `min_selection_rate_ratio` times as often as all customers: the
four-fifths rule applied to the adverse outcome. A group labelled "bad" less often than
the population is not harmed by the label; both directions are reported.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from custlabel import html_pages  # noqa: E402
from custlabel.gate_verdicts import GateResult  # noqa: E402
from custlabel.training.acceptance import Fairness  # noqa: E402

METRICS = ("precision", "recall", "selection_rate", "false_positive_rate")
OVERALL = "(all customers)"
UNKNOWN = "unknown"
N_BOOT = 400
INTERVAL = (2.5, 97.5)


def rates(cells: np.ndarray) -> dict[str, np.ndarray]:
    """The metrics of confusion counts (last axis: tp, fp, fn, tn); nan where undefined."""
    tp, fp, fn, tn = (cells[..., i].astype(float) for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "selection_rate": (tp + fp) / (tp + fp + fn + tn),
            "false_positive_rate": fp / (fp + tn),
        }


def confusion_cells(y: np.ndarray, flagged: np.ndarray, groups: pd.Series) -> tuple[list[str], np.ndarray]:
    """The groups (sorted) and their (tp, fp, fn, tn) counts, one row per group."""
    names = groups.fillna(UNKNOWN).astype(str).to_numpy()
    levels, index = np.unique(names, return_inverse=True)
    y, flagged = np.asarray(y).astype(bool), np.asarray(flagged).astype(bool)
    cell = np.select([y & flagged, ~y & flagged, y & ~flagged], [0, 1, 2], default=3)
    counts = np.bincount(index * 4 + cell, minlength=len(levels) * 4).reshape(len(levels), 4)
    return list(levels), counts


def group_table(y: np.ndarray, flagged: np.ndarray, groups: pd.Series, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """One row per group and one for all customers: size, each metric and its 95% bootstrap interval."""
    levels, counts = confusion_cells(y, flagged, groups)
    total = counts.sum()
    draws = np.random.default_rng(seed).multinomial(total, counts.ravel() / total, size=n_boot).reshape(n_boot, *counts.shape)
    rows = {
        **{level: (counts[i], draws[:, i]) for i, level in enumerate(levels)},
        OVERALL: (counts.sum(axis=0), draws.sum(axis=1)),
    }
    records = []
    for name, (cells, sampled) in rows.items():
        point, spread = rates(cells), rates(sampled)
        record = {"group": name, "customers": int(cells.sum())}
        for metric in METRICS:
            low, high = np.nanpercentile(spread[metric], INTERVAL) if np.isfinite(spread[metric]).any() else (np.nan, np.nan)
            record.update({metric: float(point[metric]), f"{metric}_low": float(low), f"{metric}_high": float(high)})
        records.append(record)
    return pd.DataFrame.from_records(records).set_index("group")


def judge(attribute: str, table: pd.DataFrame, criteria: Fairness) -> GateResult:
    """The attribute's gate over the groups large enough to judge: precision gap, and no group labelled bad far more often."""
    overall = table.loc[OVERALL]
    groups = table.drop(index=OVERALL)
    known = groups.drop(index=UNKNOWN, errors="ignore")
    gated = known[known["customers"] >= criteria.min_group_size]
    small = sorted(known.index[known["customers"] < criteria.min_group_size])
    name = f"fairness_{attribute}"
    shown = f"; shown, not gated (under {criteria.min_group_size} customers): {', '.join(small)}" if small else ""
    if UNKNOWN in groups.index:
        shown += f"; shown, not gated: {UNKNOWN} ({attribute} not known, {int(groups.loc[UNKNOWN, 'customers']):,} customers)"
    if gated.empty:
        return GateResult(name, True, f"no {attribute} group has {criteria.min_group_size} customers{shown}", {"small_groups": small}, gated=False)
    if not overall["selection_rate"] > 0:
        return GateResult(name, True, f"nobody is labelled bad: nothing to compare across {attribute}{shown}", {"small_groups": small})
    gaps = (gated["precision"] - overall["precision"]).abs()
    ratios = gated["selection_rate"] / overall["selection_rate"]
    worst_gap = gaps.idxmax() if gaps.notna().any() else None
    gap = float(gaps.max()) if worst_gap is not None else 0.0
    most, least = ratios.idxmax(), ratios.idxmin()
    highest, lowest = float(ratios.max()), float(ratios.min())
    ceiling = 1 / criteria.min_selection_rate_ratio
    rule = f"{ceiling:.2f} = 1/{criteria.min_selection_rate_ratio:g}"
    problems = []
    if gap > criteria.max_precision_gap:
        problems.append(
            f"precision of {attribute}={worst_gap} is {gated.loc[worst_gap, 'precision']:.3f} against {overall['precision']:.3f}"
            f" overall (gap {gap:.3f} > {criteria.max_precision_gap})"
        )
    if highest > ceiling:
        problems.append(f"{attribute}={most} is labelled bad at {highest:.2f} times the overall rate (> {rule})")
    figures = {"max_precision_gap": gap, "worst_gap_group": worst_gap,
               "max_selection_rate_ratio": highest, "most_labelled_bad_group": most,
               "min_selection_rate_ratio": lowest, "least_labelled_bad_group": least,
               "gated_groups": list(gated.index), "small_groups": small}
    spread = (f"groups labelled bad from {lowest:.2f} ({attribute}={least}) to {highest:.2f} ({attribute}={most})"
              f" times the overall rate (at most {rule})")
    if problems:
        return GateResult(name, False, "; ".join(problems) + f"; {spread}{shown}", figures)
    return GateResult(
        name, True, f"{len(gated)} groups: precision gap {gap:.3f} <= {criteria.max_precision_gap}, {spread}{shown}", figures,
    )


def plot(attribute: str, table: pd.DataFrame) -> plt.Figure:
    """One panel per metric: each group's value with its interval, the overall value dashed."""
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.3 * len(METRICS), 3.2))
    groups = table.drop(index=OVERALL)
    positions = np.arange(len(groups))
    for ax, metric in zip(axes, METRICS, strict=True):
        values = groups[metric].to_numpy()
        errors = np.abs(np.vstack([values - groups[f"{metric}_low"], groups[f"{metric}_high"] - values]))
        ax.bar(positions, np.nan_to_num(values), yerr=np.nan_to_num(errors), color="#5d8aa8", capsize=3)
        ax.axhline(table.loc[OVERALL, metric], color="#b03a2e", linestyle="--", linewidth=1)
        ax.set_xticks(positions, groups.index, rotation=45, fontsize=8)
        ax.set(title=metric.replace("_", " "), ylim=(0, 1))
    fig.suptitle(f"by {attribute} (95% bootstrap intervals; dashed: all customers)", fontsize=10)
    return fig


@dataclass(frozen=True)
class FairnessReport:
    """Per attribute: the group table and the gate."""

    tables: dict[str, pd.DataFrame]
    gates: list[GateResult]

    def html(self) -> str:
        """The report's section: per attribute, the verdict, the figure and the table."""
        parts = []
        for gate, (attribute, table) in zip(self.gates, self.tables.items(), strict=True):
            shown = table[["customers", *[f"{m}{s}" for m in METRICS for s in ("", "_low", "_high")]]]
            parts.append(
                f"<h3>{attribute}</h3><p class='{gate.verdict}'>{gate.verdict}: {html.escape(gate.reason)}</p>"
                f"{html_pages.figure(plot(attribute, table), f'fairness by {attribute}')}{html_pages.table(shown)}"
            )
        return "".join(parts)


def report(frame: pd.DataFrame, flagged: np.ndarray, y: np.ndarray, criteria: Fairness, n_boot: int = N_BOOT) -> FairnessReport:
    """Group tables and gates for each sensitive attribute of the criteria (columns of frame)."""
    tables = {attribute: group_table(y, flagged, frame[attribute], n_boot) for attribute in criteria.attributes}
    return FairnessReport(tables, [judge(attribute, table, criteria) for attribute, table in tables.items()])
