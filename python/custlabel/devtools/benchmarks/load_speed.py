"""`custlabel load` figures: the demo data written out as CSV and Parquet files, then loaded by the CLI.

Each load runs as its own `custlabel load` process, so its peak memory (VmHWM) is the
loader's alone; the files of each size show whether it stays flat.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql

from custlabel.config import Settings
from custlabel.demo import loader
from custlabel.devtools.benchmarks import BENCH_DATABASE
from custlabel.warehouse import db

LOAD_TARGET_ROWS_PER_SECOND = 200_000
PARQUET_ROW_GROUP = 100_000
TABLES = ("customers", "sales")


def run(settings: Settings, customers: int, days: int, end_date: date) -> list[str]:
    """Generate demo master data, export it to files, load each format with `custlabel load`; one line per figure."""
    folder = settings.local_dir / "bench" / f"load-{customers}"
    folder.mkdir(parents=True, exist_ok=True)
    loader.generate_and_load(
        customers=customers, days=days, seed=1, end_date=end_date, settings=settings, i_mean_database=BENCH_DATABASE
    )
    files = {"csv": export_csv(settings, folder)}
    files["parquet"] = {table: to_parquet(path) for table, path in files["csv"].items()}
    with db.connect(settings) as conn:
        sales = conn.execute("select count(*) from master_data.sales").fetchone()[0]
    lines = [f"load: {customers:,} customers, {sales:,} sale rows"]
    for kind, paths in files.items():
        seconds, peak = timed_load(settings, paths)
        size = sum(path.stat().st_size for path in paths.values()) / 2**20
        lines.append(
            f"  custlabel load {kind} ({size:,.0f} MiB): {seconds:.1f} s, {sales / seconds:,.0f} sale rows/s "
            f"(target >= {LOAD_TARGET_ROWS_PER_SECOND:,}), peak memory {peak:,.0f} MiB"
        )
    return lines


def export_csv(settings: Settings, folder: Path) -> dict[str, Path]:
    """master_data.* as CSV files with a header, streamed out by COPY."""
    paths = {}
    with db.connect(settings) as conn:
        for table in TABLES:
            path = paths[table] = folder / f"{table}.csv"
            # The load time is the loader's to write.
            query = sql.SQL("copy (select {} from {}) to stdout with (format csv, header)").format(
                sql.SQL(", ").join(map(sql.Identifier, _file_columns(conn, table))), sql.Identifier("master_data", table)
            )
            with path.open("wb") as handle, conn.cursor().copy(query) as copy:
                for chunk in copy:
                    handle.write(chunk)
    return paths


def _file_columns(conn, table: str) -> list[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns where table_schema = 'master_data' and table_name = %s "
        "and column_name <> 'loaded_at' order by ordinal_position",
        [table],
    ).fetchall()
    return [name for (name,) in rows]


def to_parquet(csv_path: Path) -> Path:
    """The CSV file as Parquet, converted batch by batch (every column as Arrow infers it)."""
    path = csv_path.with_suffix(".parquet")
    reader = pacsv.open_csv(csv_path)
    with pq.ParquetWriter(path, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch, row_group_size=PARQUET_ROW_GROUP)
    return path


def timed_load(settings: Settings, paths: dict[str, Path]) -> tuple[float, float]:
    """Seconds and peak memory (MiB) of one `custlabel load` process."""
    command = [sys.executable, "-m", "custlabel.cli", "load", "--i-mean-database", settings.connection.dbname]
    for table, path in paths.items():
        command += [f"--{table}", str(path)]
    env = {**os.environ, **settings.connection.pg_env()}
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _high_water_kib(process.pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"custlabel load failed: {errors.read().decode(errors='replace')}")
    return seconds, peak / 1024


def _high_water_kib(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM; rusage would count the forking parent's too)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
