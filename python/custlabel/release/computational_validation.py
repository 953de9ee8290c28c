"""Computational validation: score a night in the test environment in a fresh process, measuring speed and memory.

The child process scores every customer of the night into the test schema (the real
scoring path: read, score, reasons, write-back, swap) and reports its wall time. It
then times the model's own batch path (probabilities and reasons, as the Python engine
runs them) on BATCH_ROWS rows, on one thread: its rate per CPU-second is what the
`computational` gate judges, since a small night's wall time is mostly fixed costs
(process, sample, parity check) that say nothing of the model, and wall time on a shared
machine measures the other jobs as much as the model. Peak memory is the child's
ru_maxrss: everything the scoring process held, interpreter and libraries included.

On Spark (score_in_child_on_spark) the parent reads the night's feature rows from the Spark
database and hands them to the child in a Parquet file (custlabel.release.handed_rows says why).
The child labels them as a Spark night's Python workers do: score.label_batch (scores, labels,
reasons) over Arrow batches of ARROW_BATCH_ROWS, with the reason model built from the night's
first score.SAMPLE_ROWS by md5 of customer_id, as on_spark builds it; the rule baseline cuts
its dbt scores at its threshold. Its wall time is that labelling, without Spark's own costs
(the plan, the JVM, the write). The gated rate per CPU-second is timed as on Postgres. Peak
memory is the child's, which starts no JVM: the model's footprint in a Python worker, not the
Spark driver's or executors' (the profile's spark.driver.memory bounds those).
"""

from __future__ import annotations

import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from psycopg import sql
from threadpoolctl import threadpool_limits

from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.gate_verdicts import GateResult
from custlabel.release import handed_rows
from custlabel.scoring import reasons, score
from custlabel.training import registry, rule_baseline, threshold_cut, training_data
from custlabel.training.acceptance import Computational
from custlabel.training.deployed_model import CHALLENGER, CHAMPION, DeployedModel
from custlabel.warehouse import db

BATCH_ROWS = 50_000
SAMPLE_ROWS = 5_000
# Spark's default Arrow batch of a Python worker (spark.sql.execution.arrow.maxRecordsPerBatch).
ARROW_BATCH_ROWS = 10_000


@dataclass(frozen=True)
class ScoringRun:
    """One model's scoring of a night in the test environment, as measured in its own process."""

    model_name: str
    model_version: str
    engine: str
    rows: int
    seconds: float
    peak_mb: float
    batch_rows: int = 0
    batch_seconds: float = 0.0
    batch_cpu_seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        """The night's end-to-end rate (fixed costs included)."""
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def batch_rows_per_second(self) -> float | None:
        """The model's own wall-clock rate on a batch (None for the rule, scored inside the warehouse)."""
        return self.batch_rows / self.batch_seconds if self.batch_seconds else None

    @property
    def batch_rows_per_cpu_second(self) -> float | None:
        """The model's own rate per CPU-second of the process on a batch (None for the rule)."""
        return self.batch_rows / self.batch_cpu_seconds if self.batch_cpu_seconds else None

    def describe(self) -> str:
        batch = (
            f", {self.batch_rows_per_second:,.0f} rows/s ({self.batch_rows_per_cpu_second:,.0f} per CPU-second)"
            f" on a {self.batch_rows:,}-row batch" if self.batch_rows else ""
        )
        return (
            f"{self.model_name} v{self.model_version}: {self.rows:,} rows in {self.seconds:.1f} s ({self.engine} engine,"
            f" {self.rows_per_second:,.0f} rows/s end to end){batch}, peak {self.peak_mb:,.0f} MB"
        )


def _sample(settings: Settings, schema: str, night: date) -> pd.DataFrame:
    query = sql.SQL("select * from {} where as_of_date = :night order by md5(customer_id) limit {}").format(
        sql.Identifier(schema, score.FEATURE_HISTORY), sql.Literal(SAMPLE_ROWS)
    )
    return training_data.normalize(db.read_frame(settings, query.as_string(), {"night": night}))


def _time_batch(model: DeployedModel, sample: pd.DataFrame) -> tuple[int, float, float]:
    """Wall and CPU seconds of probabilities and reasons on BATCH_ROWS rows (the sample repeated), on one thread."""
    features = sample[list(model.feature_columns)]
    explainer = reasons.build_reason_model(model.pipeline, list(model.feature_columns), features)
    batch = pd.concat([features] * (BATCH_ROWS // len(features) + 1), ignore_index=True).head(BATCH_ROWS)
    with threadpool_limits(limits=1):  # CPU per row, without thread pools spinning on a busy machine
        started, cpu_started = time.perf_counter(), time.process_time()
        model.scores(batch)
        reasons.top_reasons(explainer, batch)
    return len(batch), time.perf_counter() - started, time.process_time() - cpu_started


def score_here(settings: Settings, schema: str, night: date, version: str | None) -> ScoringRun:
    """In the child: score the night with a version (None: the rule baseline) and time it."""
    models: score.ModelSource = score.GivenModels({})
    if version is not None:
        models = score.GivenModels({CHAMPION: registry.load_version(settings, version, CHALLENGER)})
    model = models.model(CHAMPION)
    started = time.perf_counter()
    summary = score.score(settings, score.ScoreRequest(schema, as_of=night, force=True), models)
    seconds = time.perf_counter() - started
    part = summary.slices[0]
    batch_rows, batch_seconds, batch_cpu_seconds = 0, 0.0, 0.0
    if model is not None and not model.is_rule:
        batch_rows, batch_seconds, batch_cpu_seconds = _time_batch(model, _sample(settings, schema, night))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return ScoringRun(
        part.model_name, part.model_version, part.engine, summary.customers, seconds, peak_mb, batch_rows, batch_seconds,
        batch_cpu_seconds,
    )


def label_handed_here(settings: Settings, night_rows: Path, version: str | None) -> ScoringRun:
    """In the child, on Spark: label the night's handed rows as Spark's Python workers do, and time it."""
    table = pq.read_table(night_rows)
    model = None if version is None else registry.load_version(settings, version, CHALLENGER)
    started = time.perf_counter()
    if model is None:
        rule = rule_baseline.RULE
        threshold_cut.labels(table.column(handed_rows.RULE_SCORE).to_numpy(zero_copy_only=False), float(rule.threshold))
        name, model_version = rule.name, str(rule.version)
    else:
        columns = list(model.feature_columns)
        explainer = reasons.build_reason_model(model.pipeline, columns, table.slice(0, score.SAMPLE_ROWS).select(columns).to_pandas())
        for batch in table.to_batches(max_chunksize=ARROW_BATCH_ROWS):
            score.label_batch(model, explainer, batch)
        name, model_version = model.name, str(model.version)
    seconds = time.perf_counter() - started
    batch_rows, batch_seconds, batch_cpu_seconds = 0, 0.0, 0.0
    if model is not None:
        sample = training_data.normalize(table.slice(0, SAMPLE_ROWS).to_pandas())
        batch_rows, batch_seconds, batch_cpu_seconds = _time_batch(model, sample)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return ScoringRun(name, model_version, "spark", table.num_rows, seconds, peak_mb, batch_rows, batch_seconds,
                      batch_cpu_seconds)


RUNNERS = {"score": score_here, "label_handed": label_handed_here}


def score_in_child(settings: Settings, schema: str, night: date, version: str | None) -> ScoringRun:
    """Score the night into the schema in a fresh process (version None: the rule baseline) and measure it."""
    with tempfile.TemporaryDirectory() as folder:
        return _in_child(settings, "score", (schema, night, version), f"scoring {_who(version)} in {schema}", Path(folder))


def score_in_child_on_spark(settings: Settings, database: str, night: date, version: str | None) -> ScoringRun:
    """Label the night of a database on Spark, read by this process, in a fresh process (version None: the rule
    baseline) and measure it."""
    with tempfile.TemporaryDirectory() as folder:
        rows = handed_rows.night_rows(settings, database, night, Path(folder))
        if not pq.read_metadata(rows).num_rows:
            raise CustlabelError(f"{database}.{score.FEATURE_HISTORY} has no rows on {night}: nothing to score")
        return _in_child(settings, "label_handed", (rows, version), f"labelling {_who(version)} with {database}'s rows", Path(folder))


def _who(version: str | None) -> str:
    return f"version {version}" if version else "the rule baseline"


def _in_child(settings: Settings, runner: str, job_args: tuple, what: str, folder: Path) -> ScoringRun:
    """Run one of the child's RUNNERS on its arguments after the settings, and read its run."""
    job = folder / "job.pickle"
    job.write_bytes(pickle.dumps((runner, settings, *job_args)))
    limit = settings.step_timeouts.scoring_child_seconds
    try:
        done = subprocess.run([sys.executable, "-m", "custlabel.release.computational_validation", str(job)], capture_output=True,
                              text=True, timeout=limit)
    except subprocess.TimeoutExpired as error:
        raise CustlabelError(f"{what} did not finish within {limit:g} s"
                             " (CUSTLABEL_SCORING_CHILD_TIMEOUT_SECONDS): stopped") from error
    if done.returncode != 0:
        raise CustlabelError(f"{what} failed: {done.stderr.strip()[-1500:]}")
    return ScoringRun(**json.loads(done.stdout.strip().splitlines()[-1]))


def judge(challenger: ScoringRun, champion: ScoringRun | None, criteria: Computational) -> list[GateResult]:
    """The computational gate (acceptance.yml) and the comparison with the champion (reported)."""
    rate = challenger.batch_rows_per_cpu_second or challenger.rows_per_second
    figures = {"challenger": {**asdict(challenger), "batch_rows_per_cpu_second": rate}}
    problems = []
    if rate < criteria.min_rows_per_cpu_second:
        problems.append(f"{rate:,.0f} rows per CPU-second < {criteria.min_rows_per_cpu_second:,.0f}")
    if challenger.peak_mb > criteria.max_peak_memory_mb:
        problems.append(f"peak memory {challenger.peak_mb:,.0f} MB > {criteria.max_peak_memory_mb:,.0f} MB")
    verdict = "; ".join(problems) if problems else (
        f"{rate:,.0f} rows per CPU-second >= {criteria.min_rows_per_cpu_second:,.0f}, peak {challenger.peak_mb:,.0f} MB"
        f" <= {criteria.max_peak_memory_mb:,.0f} MB"
    )
    gates = [GateResult("computational", not problems, verdict, figures)]
    if champion is not None:
        against = (
            f"challenger {challenger.describe()}; champion {champion.describe()};"
            f" end-to-end time {challenger.seconds / champion.seconds:.2f}x, peak memory"
            f" {challenger.peak_mb / champion.peak_mb:.2f}x the champion's"
        )
        gates.append(GateResult("computational_vs_champion", True, against, {"champion": asdict(champion)}, gated=False))
    return gates


if __name__ == "__main__":
    job_runner, job_settings, *job_args = pickle.loads(Path(sys.argv[1]).read_bytes())
    print(json.dumps(asdict(RUNNERS[job_runner](job_settings, *job_args))))
