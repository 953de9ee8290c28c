"""Benchmarks at scale: each module has run(settings, ...) -> list[str] and prints figures, never pass/fail."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import psycopg
from psycopg import sql

from custlabel.config import Settings
from custlabel.warehouse import guard

BENCH_DATABASE = "custlabel_bench"


def bench_settings(settings: Settings, i_mean_database: str | None = None) -> Settings:
    """The same server, a database and an MLflow store of the benchmark's own (the demo stays as it is).

    Off the embedded server, only when the operator names the benchmark's database (the guard).
    """
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as conn:
        guard.confirm_scratch_database(
            conn, settings, i_mean_database, "create and fill a benchmark database (custlabel bench)", BENCH_DATABASE
        )
        exists = conn.execute("select 1 from pg_database where datname = %s", [BENCH_DATABASE]).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(BENCH_DATABASE)))
    folder = settings.local_dir / "bench"
    return dataclasses.replace(
        settings,
        connection=dataclasses.replace(settings.connection, dbname=BENCH_DATABASE),
        mlflow_tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        mlflow_artifact_root=folder / "artifacts",
    )


def run_all(
    settings: Settings, sizes: list[int], days: int, sections: set[str], i_mean_database: str | None = None
) -> list[str]:
    """Run the chosen sections (warehouse, training, scoring, load, monitoring, purchase_only, validation, prefect_dbt) at each size; returns every figure line.

    With training, validation also validates the version trained on the demo world, its dbt build included.
    """
    from custlabel.devtools.benchmarks import (
        dbt_build,
        load_speed,
        monitoring,
        prefect_dbt_overhead,
        purchase_only,
        scoring,
        training,
        validation,
    )

    target = bench_settings(settings, i_mean_database)
    end_date = date.today() - timedelta(days=1)
    lines: list[str] = []
    for customers in sizes:
        if {"warehouse", "training"} & sections:
            lines += _report(dbt_build.run(target, customers, days, end_date))
        if "training" in sections:
            lines += _report(training.run(target))
        if {"training", "validation"} <= sections:
            lines += _report(validation.run_on_demo_world(target, customers, end_date))
        if "scoring" in sections:
            lines += _report(scoring.run(target, customers))
        if "load" in sections:
            lines += _report(load_speed.run(target, customers, days, end_date))
        if "monitoring" in sections:
            lines += _report(monitoring.run(target, customers))
        if "purchase_only" in sections:
            lines += _report(purchase_only.run(target, customers, days, end_date))
        if "validation" in sections:
            lines += _report(validation.run(target, customers))
        if "prefect_dbt" in sections:
            lines += _report(prefect_dbt_overhead.run(target, customers, days, end_date))
    return lines


def _report(lines: list[str]) -> list[str]:
    print("\n".join(lines), flush=True)
    return lines
