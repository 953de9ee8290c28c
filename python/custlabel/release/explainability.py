"""Explainability report: global importance, partial dependence of the top features, and a check of the reasons.

- Importance: permutation importance on the test night (drop in average precision when a
  column is shuffled), for every model family alike. SHAP is not used: it is not installed
  here and permutation importance already covers every family.
- Partial dependence (sklearn.inspection) of the most important numeric features, over
  their 5th-95th percentiles (nulls are left out of the grid).
- The reasons the scorer would write (custlabel.scoring.reasons) are checked on the same rows:
  a "high"/"low" reason must read in the direction the model's risk takes across
  customers, and words that state a fact must be true ("new customer": tenure under
  the bound of tenure_days' reason_facts in the features' YAML).
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.inspection import partial_dependence, permutation_importance  # noqa: E402

from custlabel import html_pages
from custlabel.gate_verdicts import GateResult  # noqa: E402
from custlabel.scoring import reasons  # noqa: E402
from custlabel.training.features import NUMERIC_FEATURES  # noqa: E402

IMPORTANCE_ROWS = 10_000
DEPENDENCE_ROWS = 2_000
TOP_FEATURES = 4
REPEATS = 5


def importance(pipeline: Any, features: pd.DataFrame, y: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Permutation importance of each column (mean and std of the drop in average precision), largest first."""
    found = permutation_importance(
        pipeline, features, y, scoring="average_precision", n_repeats=REPEATS, random_state=seed, n_jobs=1
    )
    table = pd.DataFrame({"importance": found.importances_mean, "std": found.importances_std}, index=features.columns)
    return table.sort_values("importance", ascending=False)


def dependence(pipeline: Any, features: pd.DataFrame, columns: list[str], points: int = 12) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Partial dependence (probability of bad) of each column over its 5th-95th percentiles."""
    curves = {}
    for column in columns:
        grid = np.unique(np.nanpercentile(features[column].to_numpy(dtype=float), np.linspace(5, 95, points)))
        found = partial_dependence(pipeline, features, [column], kind="average", custom_values={column: grid})
        curves[column] = (found["grid_values"][0], found["average"][0])
    return curves


def _directions(features: pd.DataFrame, risk: np.ndarray) -> dict[str, float]:
    return {
        column: reasons.direction_across_customers(features[column].to_numpy(dtype=float, na_value=np.nan), risk)
        for column in NUMERIC_FEATURES
        if column in features
    }


def _word_sources(columns: list[str]) -> dict[str, list[tuple[str, float]]]:
    """Each high/low word → the (feature, direction it claims) it can come from."""
    sources: dict[str, list[tuple[str, float]]] = {}
    for column in columns:
        high, low, _ = reasons.phrases_for(column)
        absolute = reasons.ABSOLUTE_WORDS.get(column, reasons.AbsoluteWords())
        for words in (high, *(w for _, w in absolute.at_least)):
            sources.setdefault(words, []).append((column, 1.0))
        for words in (low, *(w for _, w in absolute.below)):
            sources.setdefault(words, []).append((column, -1.0))
    return sources


def check_reasons(pipeline: Any, feature_columns: list[str], features: pd.DataFrame) -> tuple[GateResult, Counter]:
    """Whether the reasons the scorer would write read in the risk's direction and state only true facts."""
    explainer = reasons.build_reason_model(pipeline, feature_columns, features[feature_columns])
    named = np.column_stack(reasons.top_reasons(explainer, features[feature_columns]))
    risk = pipeline.predict_proba(features[feature_columns])[:, 1]
    directions = _directions(features, risk)
    sources = _word_sources([c for c in feature_columns if c in directions])
    counts = Counter(words for words in named.ravel() if words is not None)
    against = sorted(
        words for words in counts
        if words in sources and all(directions[column] != claimed for column, claimed in sources[words])
    )
    untrue = []
    tenure = features["tenure_days"].to_numpy(dtype=float, na_value=np.nan) if "tenure_days" in features else None
    if tenure is not None:
        for bound, words in reasons.ABSOLUTE_WORDS["tenure_days"].below:
            wrong = int(((named == words).any(axis=1) & ~(tenure < bound)).sum())
            if wrong:
                untrue.append(f"'{words}' for {wrong} customers of {bound:g} days or more")
        for bound, words in reasons.ABSOLUTE_WORDS["tenure_days"].at_least:
            wrong = int(((named == words).any(axis=1) & ~(tenure >= bound)).sum())
            if wrong:
                untrue.append(f"'{words}' for {wrong} customers of under {bound:g} days")
    figures = {"rows": len(features), "reasons_named": int(sum(counts.values())), "method": explainer.method,
               "against_risk": against, "untrue": untrue,
               "unnamed_features": [p.feature for p in explainer.numeric if not p.nameable]}
    problems = [f"reasons against the direction of risk: {', '.join(against)}"] if against else []
    problems += untrue
    if problems:
        return GateResult("reasons", False, "; ".join(problems), figures), counts
    return GateResult(
        "reasons", True,
        f"{figures['reasons_named']:,} reasons on {len(features):,} customers ({explainer.method}) read in the direction"
        " of risk; stated facts hold", figures,
    ), counts


@dataclass(frozen=True)
class ExplainReport:
    """Global importance, partial dependence curves, the reasons check and the commonest reasons."""

    importance: pd.DataFrame
    curves: dict[str, tuple[np.ndarray, np.ndarray]]
    gate: GateResult
    reason_counts: Counter

    def html(self) -> str:
        """The report's section."""
        top = self.importance.head(15)
        fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1))
        ax.barh(top.index[::-1], top["importance"][::-1], xerr=top["std"][::-1], color="#5d8aa8")
        ax.set(xlabel="drop in average precision when shuffled", title="Permutation importance (test night)")
        parts = [html_pages.figure(fig, "permutation importance"), html_pages.table(top)]
        if self.curves:
            fig, axes = plt.subplots(1, len(self.curves), figsize=(3.3 * len(self.curves), 3), squeeze=False)
            for ax, (column, (grid, average)) in zip(axes[0], self.curves.items(), strict=True):
                ax.plot(grid, average, marker="o")
                ax.set(title=column, xlabel="value", ylabel="mean probability of bad")
            parts += ["<h3>Partial dependence of the top features</h3>", html_pages.figure(fig, "partial dependence")]
        common = pd.DataFrame(self.reason_counts.most_common(12), columns=["reason", "customers"])
        parts += [
            f"<h3>Per-customer reasons</h3><p class='{self.gate.verdict}'>{self.gate.verdict}: {html.escape(self.gate.reason)}</p>",
            html_pages.table(common, index=False),
        ]
        return "".join(parts)


def report(pipeline: Any, feature_columns: list[str], frame: pd.DataFrame, y: np.ndarray, seed: int = 0) -> ExplainReport:
    """The explainability report of a fitted pipeline on the test night's rows (sampled for cost)."""
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(frame))[:IMPORTANCE_ROWS]
    features, labels = frame.iloc[rows][feature_columns].reset_index(drop=True), np.asarray(y)[rows]
    ranked = importance(pipeline, features, labels, seed)
    numeric = [c for c in ranked.index if c in NUMERIC_FEATURES][:TOP_FEATURES]
    curves = dependence(pipeline, features.head(DEPENDENCE_ROWS), numeric)
    gate, counts = check_reasons(pipeline, feature_columns, features)
    return ExplainReport(ranked, curves, gate, counts)
