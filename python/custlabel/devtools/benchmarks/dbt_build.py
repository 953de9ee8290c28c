"""dbt build figures: demo data load, the full dbt build, the build of one new night's changed data, and a whole
nightly run (`custlabel nightly --skip-training`) of the night after."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import date

from psycopg import sql

from custlabel.config import Settings, schema_for
from custlabel.demo import loader, simulation
from custlabel.devtools.benchmarks import BENCH_DATABASE
from custlabel.devtools.benchmarks.memory import PeakMemory
from custlabel.devtools.benchmarks.results import Record
from custlabel.monitoring import pipeline_runs
from custlabel.warehouse import db, dbt_runner

LOAD_TARGET_ROWS_PER_SECOND = 200_000
FULL_BUILD_TARGET_SECONDS = 300
NIGHT_BUILD_TARGET_SECONDS = 60
NIGHTLY_RUN_TARGET_SECONDS = 120


def build_world(settings: Settings, customers: int, days: int, end_date: date) -> Record:
    """Generate and load a demo world into the benchmark's database, then build every night of it."""
    started = time.perf_counter()
    with PeakMemory(settings) as load_peaks:
        summary = loader.generate_and_load(
            customers=customers, days=days, seed=1, end_date=end_date, settings=settings, i_mean_database=BENCH_DATABASE
        )
    load_seconds = time.perf_counter() - started
    sales = int(re.search(r"([\d,]+) sale rows", summary).group(1).replace(",", ""))
    started = time.perf_counter()
    with PeakMemory(settings) as build_peaks:
        dbt_runner.run(settings, ["build", "--full-refresh"], target="prod", as_of_date=end_date.isoformat())
    return Record(
        "world", customers, days,
        seconds={"load": load_seconds, "full_build": time.perf_counter() - started},
        bytes={**_prefixed("load", load_peaks.as_dict()), **_prefixed("full_build", build_peaks.as_dict())},
        figures={"sale_rows": sales},
    )


def build_night(settings: Settings, customers: int, days: int, rate_scale: float = 1.0) -> Record:
    """Append one simulated night (its rates times rate_scale) and time the dbt build of that night."""
    data = simulation.advance(settings, days=1, i_mean_database=BENCH_DATABASE, rate_scale=rate_scale)
    with db.connect(settings) as conn:
        changed, total = conn.execute(
            "select count(*) filter (where loaded_at = (select max(loaded_at) from master_data.sales)), count(*) "
            "from master_data.sales"
        ).fetchone()
    started = time.perf_counter()
    with PeakMemory(settings) as peaks:
        dbt_runner.run(settings, ["build"], target="prod", as_of_date=data.night.isoformat())
    return Record(
        "night", customers, days,
        seconds={"night_build": time.perf_counter() - started},
        bytes=_prefixed("night_build", peaks.as_dict()),
        figures={"rate_scale": rate_scale, "changed_sale_rows": changed, "sale_rows": total, "changed_share": changed / total},
    )


def run_nightly(settings: Settings, customers: int, days: int) -> Record:
    """Append one simulated night and time `custlabel nightly --skip-training` on it, a process of its own as an
    operator starts it: freshness, build, scoring, write-back, monitoring and report; each step's seconds from the run record."""
    data = simulation.advance(settings, days=1, i_mean_database=BENCH_DATABASE)
    command = [sys.executable, "-m", "custlabel.cli", "nightly", "--target", "prod", "--as-of", data.night.isoformat(),
               "--skip-training"]
    environment = {**os.environ, **settings.connection.pg_env(), "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri}
    started = time.perf_counter()
    with PeakMemory(settings) as peaks:
        done = subprocess.run(command, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"custlabel nightly failed on the benchmark's night {data.night}: {done.stderr.strip()[-2000:]}")
    return Record(
        "nightly", customers, days,
        seconds={"nightly_run": seconds, **{f"step {name}": step for name, step in _step_seconds(settings, data.night).items()}},
        bytes=_prefixed("nightly_run", peaks.as_dict()),
    )


def _step_seconds(settings: Settings, night: date) -> dict[str, float]:
    """The steps of the night's newest run in the prod target's run record, each with its seconds."""
    with db.connect(settings) as conn:
        (steps,) = conn.execute(
            sql.SQL("select steps from {} where as_of_date = %s order by started_at desc limit 1").format(
                sql.Identifier(schema_for("prod"), pipeline_runs.TABLE)),
            [night],
        ).fetchone()
    return {step["name"]: float(step["seconds"]) for step in steps}


def run(settings: Settings, customers: int, days: int, end_date: date) -> list[Record]:
    """The warehouse section: a world's load and full build, one night's build at the demo's rates, then a whole
    nightly run of the night after."""
    world = build_world(settings, customers, days, end_date)
    night = build_night(settings, customers, days)
    nightly = run_nightly(settings, customers, days)
    world.lines = lines(world, night, nightly)
    return [world, night, nightly]


def lines(world: Record, night: Record, nightly_run: Record | None = None) -> list[str]:
    """The section's printed figures, beside the issue's targets."""
    sales, load = world.figures["sale_rows"], world.seconds["load"]
    full, night_build = world.seconds["full_build"], night.seconds["night_build"]
    return [
        f"warehouse: {world.customers:,} customers, {sales:,} sale rows over {world.history_days} days",
        f"  generate + load (COPY): {load:.1f} s, {sales / load:,.0f} sale rows/s (target >= {LOAD_TARGET_ROWS_PER_SECOND:,})",
        f"  full dbt build: {full:.1f} s (target < {FULL_BUILD_TARGET_SECONDS} s), "
        f"Postgres peak {world.bytes['full_build_peak_postgres_bytes'] / 2**20:,.0f} MiB",
        f"  dbt build of one night's changed data ({night.figures['changed_sale_rows']:,} sale rows, "
        f"{night.figures['changed_share']:.2%}): {night_build:.1f} s (target < {NIGHT_BUILD_TARGET_SECONDS} s), "
        f"Postgres peak {night.bytes['night_build_peak_postgres_bytes'] / 2**20:,.0f} MiB",
        *(nightly_lines(nightly_run) if nightly_run else []),
    ]


def nightly_lines(nightly: Record) -> list[str]:
    """The whole nightly run's figures: its wall time beside the target, its peaks, and each step's seconds."""
    steps = {name.removeprefix("step "): seconds for name, seconds in nightly.seconds.items() if name.startswith("step ")}
    return [
        f"  custlabel nightly --skip-training, end to end: {nightly.seconds['nightly_run']:.1f} s "
        f"(target < {NIGHTLY_RUN_TARGET_SECONDS} s), largest process "
        f"{nightly.bytes['nightly_run_peak_largest_process_bytes'] / 2**20:,.0f} MiB, Postgres peak "
        f"{nightly.bytes['nightly_run_peak_postgres_bytes'] / 2**20:,.0f} MiB",
        "    " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in steps.items()),
    ]


def _prefixed(step: str, values: dict[str, int]) -> dict[str, int]:
    return {f"{step}_{name}": value for name, value in values.items()}
