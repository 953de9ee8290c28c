"""dbt build figures: demo data load, the full dbt build, and the build of one new night's changed data."""

from __future__ import annotations

import re
import time
from datetime import date

from custlabel.config import Settings
from custlabel.demo import loader, simulation
from custlabel.devtools.benchmarks import BENCH_DATABASE
from custlabel.devtools.benchmarks.memory import PeakMemory
from custlabel.devtools.benchmarks.results import Record
from custlabel.warehouse import db, dbt_runner

LOAD_TARGET_ROWS_PER_SECOND = 200_000
FULL_BUILD_TARGET_SECONDS = 300
NIGHT_BUILD_TARGET_SECONDS = 60


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


def run(settings: Settings, customers: int, days: int, end_date: date) -> list[Record]:
    """The warehouse section: a world's load and full build, then one night at the demo's rates."""
    world = build_world(settings, customers, days, end_date)
    night = build_night(settings, customers, days)
    world.lines = lines(world, night)
    return [world, night]


def lines(world: Record, night: Record) -> list[str]:
    """The section's printed figures, beside the issue's targets."""
    sales, load = world.figures["sale_rows"], world.seconds["load"]
    full, nightly = world.seconds["full_build"], night.seconds["night_build"]
    return [
        f"warehouse: {world.customers:,} customers, {sales:,} sale rows over {world.history_days} days",
        f"  generate + load (COPY): {load:.1f} s, {sales / load:,.0f} sale rows/s (target >= {LOAD_TARGET_ROWS_PER_SECOND:,})",
        f"  full dbt build: {full:.1f} s (target < {FULL_BUILD_TARGET_SECONDS} s), "
        f"Postgres peak {world.bytes['full_build_peak_postgres_bytes'] / 2**20:,.0f} MiB",
        f"  dbt build of one night's changed data ({night.figures['changed_sale_rows']:,} sale rows, "
        f"{night.figures['changed_share']:.2%}): {nightly:.1f} s (target < {NIGHT_BUILD_TARGET_SECONDS} s), "
        f"Postgres peak {night.bytes['night_build_peak_postgres_bytes'] / 2**20:,.0f} MiB",
    ]


def _prefixed(step: str, values: dict[str, int]) -> dict[str, int]:
    return {f"{step}_{name}": value for name, value in values.items()}
