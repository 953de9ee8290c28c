"""Purchase-only demo data: the model against BG/NBD, average precision with bootstrap intervals, side by side."""

from __future__ import annotations

import time
import warnings
from datetime import date

import numpy as np
from sklearn.metrics import average_precision_score

from custlabel.config import Settings
from custlabel.demo import loader
from custlabel.devtools.benchmarks import BENCH_DATABASE
from custlabel.training import acceptance, evaluate, model_search, training_data
from custlabel.training.features import LABEL_COLUMN
from custlabel.warehouse import dbt_runner

BOOTSTRAP_SAMPLES = 500
# Issue 24's target: average precision at least BG/NBD's + 0.02, the bootstrap interval of the difference above 0.
AVERAGE_PRECISION_MARGIN = 0.02


def bootstrap(y: np.ndarray, model: np.ndarray, other: np.ndarray, recall: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Average precision of both rankings, their difference and their precision at a recall, over resampled test rows."""
    rng = np.random.default_rng(seed)
    figures: dict[str, list[float]] = {"model": [], "bgnbd": [], "difference": [], "precision_difference": []}
    for _ in range(BOOTSTRAP_SAMPLES):
        rows = rng.integers(0, len(y), len(y))
        if y[rows].min() == y[rows].max():
            continue
        ours, theirs = average_precision_score(y[rows], model[rows]), average_precision_score(y[rows], other[rows])
        figures["model"].append(ours)
        figures["bgnbd"].append(theirs)
        figures["difference"].append(ours - theirs)
        figures["precision_difference"].append(
            evaluate.precision_at_recall(y[rows], model[rows], recall) - evaluate.precision_at_recall(y[rows], other[rows], recall)
        )
    return {name: np.asarray(values) for name, values in figures.items()}


def margin_line(difference: float, low: float) -> str:
    """The model's lead over BG/NBD in average precision against the target, saying by how much a miss falls short."""
    short = AVERAGE_PRECISION_MARGIN - difference
    if short <= 0 and low > 0:
        verdict = "target met"
    else:
        misses = ([f"short by {short:.3f}"] if short > 0 else []) + (["the interval reaches 0"] if low <= 0 else [])
        verdict = "target NOT met: " + " and ".join(misses)
    return (
        f"model - BG/NBD average precision {difference:+.3f}, 95% interval low {low:+.3f} "
        f"(target >= +{AVERAGE_PRECISION_MARGIN} with the interval above 0: {verdict})"
    )


def _interval(values: np.ndarray) -> str:
    low, high = np.percentile(values, [2.5, 97.5])
    return f"[{low:+.3f}, {high:+.3f}]" if low < 0 else f"[{low:.3f}, {high:.3f}]"


def run(settings: Settings, customers: int, days: int, end_date: date, config: model_search.TrainConfig | None = None) -> list[str]:
    """Generate a purchase log, build it, train, and compare the model with BG/NBD on the same test rows."""
    summary = loader.generate_and_load(
        customers=customers, days=days, seed=1, end_date=end_date, settings=settings,
        i_mean_database=BENCH_DATABASE, purchase_only=True,
    )
    dbt_runner.run(settings, ["build", "--full-refresh"], target="prod", as_of_date=end_date.isoformat())
    started = time.perf_counter()
    data = training_data.load(settings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model_search.train(data, acceptance.load(settings=settings), config or model_search.TrainConfig())
    seconds = time.perf_counter() - started
    scores, chosen = result.test_scores, result.selection.chosen
    # BG/NBD ranks the customers with a purchase: both rankings are judged on those rows
    covered = scores["bgnbd_score"].notna().to_numpy()
    y = scores[LABEL_COLUMN].to_numpy()[covered]
    model, other = scores["score"].to_numpy()[covered], scores["bgnbd_score"].to_numpy()[covered]
    recall = result.bgnbd.recall
    spread = bootstrap(y, model, other, recall)
    difference = average_precision_score(y, model) - average_precision_score(y, other)
    low = float(np.percentile(spread["difference"], 2.5))
    lines = [
        f"purchase-only: {summary}",
        f"  trained in {seconds:.0f} s with {len(caught)} warnings; chosen {chosen.name}; "
        f"{len(result.selection.features.left_out)} features left out ({', '.join(result.selection.features.left_out)})",
        *(f"  {line}" for line in model_search.night_lines(result.data)),
        f"  test {result.data.plan.test_date}: {len(y):,} rows with a purchase (BG/NBD's summary) of {covered.size:,}, "
        f"bad rate {y.mean():.3f}",
        f"  average precision   model {average_precision_score(y, model):.3f} {_interval(spread['model'])}   "
        f"BG/NBD {average_precision_score(y, other):.3f} {_interval(spread['bgnbd'])}   "
        f"model - BG/NBD {_interval(spread['difference'])} (95% bootstrap, {BOOTSTRAP_SAMPLES} resamples of the test rows)",
        f"  precision at the labels' recall {recall:.3f}: model labels {result.bgnbd.model_precision:.3f}, "
        f"BG/NBD ranking {result.bgnbd.precision_at_recall:.3f}; model - BG/NBD ranking {_interval(spread['precision_difference'])}",
        f"  {margin_line(difference, low)}",
    ]
    for candidate in result.selection.candidates:
        ap = average_precision_score(y, candidate.pipeline.predict_proba(data.test[result.feature_columns])[:, 1][covered])
        lines.append(f"  candidate {candidate.name:<24} validation AP {candidate.validation_pr_auc:.3f}  test AP {ap:.3f}")
    return lines
