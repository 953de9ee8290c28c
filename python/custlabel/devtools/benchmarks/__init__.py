"""Benchmarks at scale: each module has run(settings, ...) returning figure lines or records; figures, never pass/fail."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from custlabel.config import Settings
from custlabel.devtools.benchmarks import results
from custlabel.devtools.benchmarks.memory import PeakMemory
from custlabel.devtools.benchmarks.results import Record
from custlabel.warehouse import guard
from custlabel.warehouse.progress import Progress

if TYPE_CHECKING:
    from custlabel.devtools.benchmarks.curves import CurvePlan
    from custlabel.devtools.benchmarks.spark_curves import SparkPlan

BENCH_DATABASE = "custlabel_bench"


def bench_settings(settings: Settings, i_mean_database: str | None = None) -> Settings:
    """The same server, a database and an MLflow store of the benchmark's own (the demo stays as it is).

    Off the embedded server, only when the operator names the benchmark's database (the guard).
    """
    guard.create_scratch_database(
        settings, i_mean_database, "create and fill a benchmark database (custlabel bench)", BENCH_DATABASE
    )
    folder = settings.local_dir / "bench"
    return dataclasses.replace(
        settings,
        connection=dataclasses.replace(settings.connection, dbname=BENCH_DATABASE),
        mlflow_tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        mlflow_artifact_root=folder / "artifacts",
    )


def run_all(
    settings: Settings,
    sizes: list[int],
    days: int,
    sections: set[str],
    i_mean_database: str | None = None,
    plan: CurvePlan | None = None,
    command: list[str] | None = None,
    spark_plan: SparkPlan | None = None,
) -> list[str]:
    """Run the chosen sections (warehouse, training, scoring, load, monitoring, purchase_only, validation, prefect_dbt) at each size,
    then the scaling curves of the plan and of the Spark plan; prints and returns every figure line, writes
    .local/bench/latest.json.

    With training, validation also validates the version trained on the demo world, its dbt build included.
    """
    from custlabel.devtools.benchmarks import (
        curves,
        dbt_build,
        load_speed,
        monitoring,
        prefect_dbt_overhead,
        purchase_only,
        scoring,
        spark_curves,
        training,
        validation,
    )

    target = bench_settings(settings, i_mean_database)
    end_date = world_end(date.today(), sections, plan)
    records: list[Record] = []
    chosen = [
        ("warehouse", {"warehouse", "training"} & sections, lambda n: dbt_build.run(target, n, days, end_date)),
        ("training", "training" in sections, lambda n: training.run(target)),
        ("validation_demo_world", {"training", "validation"} <= sections,
         lambda n: validation.run_on_demo_world(target, n, end_date)),
        ("scoring", "scoring" in sections, lambda n: scoring.run(target, n)),
        ("load", "load" in sections, lambda n: load_speed.run(target, n, days, end_date)),
        ("monitoring", "monitoring" in sections, lambda n: monitoring.run(target, n)),
        ("purchase_only", "purchase_only" in sections, lambda n: purchase_only.run(target, n, days, end_date)),
        ("validation", "validation" in sections, lambda n: validation.run(target, n)),
        ("prefect_dbt", "prefect_dbt" in sections, lambda n: prefect_dbt_overhead.run(target, n, days, end_date)),
    ]
    wanted = [(name, section) for name, chosen_here, section in chosen if chosen_here]
    with Progress("bench", len(sizes) * len(wanted), "sections") as progress:
        for customers in sizes:
            for name, section in wanted:
                records += _report(_timed(target, name, customers, days, lambda: section(customers)))
                progress.advance()
    lines = [line for record in records for line in record.lines]
    drawn = []
    if plan is not None:
        measured = curves.measure(target, plan, end_date)
        records += measured
        lines += [line for record in measured for line in record.lines]
        drawn = curves.shape(measured, plan)
        for curve in drawn:
            lines += _print([*curve.table(), f"  drawn: {curves.draw(curve, settings.local_dir / 'bench')}"])
    if spark_plan is not None:
        measured = []
        for record in spark_curves.measure(target, spark_plan, end_date):
            measured.append(record)
            lines += _print(spark_curves.lines([record]))
            # A Spark run takes hours at 100,000 customers: one stopped keeps the figures measured so far.
            results.write(settings.local_dir / "bench" / "latest.json", results.document(
                records + measured, command or [], datetime.now(timezone.utc), results.git_commit(settings.project_dir),
                results.this_machine(),
            ))
        records += measured
        for curve in spark_curves.curves(measured, spark_plan):
            drawn.append(curve)
            lines += _print([*curve.table(), f"  drawn: {curves.draw(curve, settings.local_dir / 'bench')}"])
    doc = results.document(
        records, command or [], datetime.now(timezone.utc), results.git_commit(settings.project_dir), results.this_machine(),
        {curve.name: curve.as_dict() for curve in drawn},
    )
    lines += _print([f"figures: {results.write(settings.local_dir / 'bench' / 'latest.json', doc)}"])
    return lines


def world_end(today: date, sections: set[str], plan: CurvePlan | None) -> date:
    """The newest night of the worlds built: far enough back that every night appended to a world (the warehouse
    section's night and nightly run, the curves' nights) is over by today, as a company's nights are. A night not
    over yet holds rows updated after the clock: a build does not take them as its newest (changed_since_last_build),
    so the next night checks them again, and its figures would not be a company's."""
    appended = max(2 if {"warehouse", "training"} & sections else 0, plan.nights_after_world() if plan else 0)
    return today - timedelta(days=1 + appended)


def _timed(settings: Settings, name: str, customers: int, days: int, section: Callable[[], object]) -> list[Record]:
    """A section's records; a section that prints lines only gets one record of its wall time and peak memory."""
    started = time.perf_counter()
    with PeakMemory(settings) as peaks:
        returned = section()
    if returned and isinstance(returned[0], Record):
        return returned
    return [Record(name, customers, days, seconds={"section": time.perf_counter() - started}, bytes=peaks.as_dict(), lines=returned)]


def _report(records: list[Record]) -> list[Record]:
    for record in records:
        _print(record.lines)
    return records


def _print(lines: list[str]) -> list[str]:
    if lines:
        print("\n".join(lines), flush=True)
    return lines
