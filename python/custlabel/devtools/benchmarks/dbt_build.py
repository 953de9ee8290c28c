"""dbt build figures: demo data load, full dbt build, and the incremental build of one new night."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta

from custlabel.config import Settings
from custlabel.demo import loader
from custlabel.devtools.benchmarks import BENCH_DATABASE
from custlabel.warehouse import dbt_runner

LOAD_TARGET_ROWS_PER_SECOND = 200_000
FULL_BUILD_TARGET_SECONDS = 600
INCREMENTAL_SPEEDUP_TARGET = 5


def run(settings: Settings, customers: int, days: int, end_date: date) -> list[str]:
    """Generate and load into the benchmark's own database, build everything, then build the next night."""
    started = time.perf_counter()
    summary = loader.generate_and_load(
        customers=customers, days=days, seed=1, end_date=end_date, settings=settings, i_mean_database=BENCH_DATABASE
    )
    load_seconds = time.perf_counter() - started
    sales = int(re.search(r"([\d,]+) sale rows", summary).group(1).replace(",", ""))

    started = time.perf_counter()
    dbt_runner.run(settings, ["build", "--full-refresh"], target="prod", as_of_date=end_date.isoformat())
    full_seconds = time.perf_counter() - started

    next_night = end_date + timedelta(days=1)
    started = time.perf_counter()
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=next_night.isoformat())
    incremental_seconds = time.perf_counter() - started

    lines = [
        f"warehouse: {customers:,} customers, {sales:,} sale rows over {days} days",
        f"  generate + load (COPY): {load_seconds:.1f} s, {sales / load_seconds:,.0f} sale rows/s "
        f"(target >= {LOAD_TARGET_ROWS_PER_SECOND:,})",
        f"  full dbt build: {full_seconds:.1f} s (target < {FULL_BUILD_TARGET_SECONDS} s)",
        f"  incremental dbt build of the next night: {incremental_seconds:.1f} s, "
        f"{full_seconds / incremental_seconds:.1f}x faster than full (target >= {INCREMENTAL_SPEEDUP_TARGET}x)",
    ]
    return lines
