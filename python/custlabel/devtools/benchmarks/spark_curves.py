"""The night on a local Spark session against customers and executor cores (`custlabel bench --target spark`).

Per size, the demo world is written as Parquet and built in full on Spark once, and kept aside.
The demo simulation appends one night to the same world on Postgres (the Postgres bench's night);
that night's extract (the rows it loaded) is applied to a copy of the Spark world for each core
count (CUSTLABEL_SPARK_CORES), where the night is built, scored and published as
`custlabel nightly --target spark` does. Every Spark step runs in a fresh process: a session's
cores are fixed when it starts, and its JVM counts in the bench's peak memory.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import psutil
import pyarrow as pa

from custlabel.config import Settings, exported
from custlabel.demo import loader, simulation, spark_master_data
from custlabel.devtools.benchmarks import BENCH_DATABASE, fresh_process
from custlabel.devtools.benchmarks.curves import Curve
from custlabel.devtools.benchmarks.memory import PeakMemory
from custlabel.devtools.benchmarks.results import Record
from custlabel.errors import CustlabelError
from custlabel.nightly import spark_night
from custlabel.nightly.night_steps import Night
from custlabel.warehouse import contract, db, dbt_runner, spark_session
from custlabel.warehouse.progress import Progress

NIGHT_SECONDS = "night on Spark seconds (dbt build, score, publish)"
# The master-data tables and the key whose rows a night's extract replaces.
EXTRACT_KEYS = {"customers": "customer_id", "sales": "sale_id"}
# The world's full build runs on the machine's usual session (the profile's default cores); the nights vary them.
WORLD_CORES = 2
EXTRACT_QUERY = "select {columns} from master_data.{table} where loaded_at = (select max(loaded_at) from master_data.{table})"


@dataclass(frozen=True)
class SparkPlan:
    """What to measure on Spark: customer counts (smallest first), executor core counts (each night on each, in the
    order given: the most telling first when time is short), one history length."""

    sizes: list[int]
    cores: list[int]
    days: int

    @classmethod
    def from_options(cls, sizes: list[int] | None, cores: list[int] | None, days: int, postgres_only: list[str]) -> SparkPlan:
        """The plan of `--target spark`; postgres_only names the options given that measure Postgres (refused here)."""
        if not sizes:
            raise CustlabelError("--target spark measures the night against customers: give --sizes, e.g. --sizes 10000,100000")
        if postgres_only:
            raise CustlabelError(f"{', '.join(postgres_only)} measure Postgres: leave them out with --target spark"
                                 " (run them separately)")
        return cls(sorted(set(sizes)), list(dict.fromkeys(cores or [1, 2, 4])), days)


def spark_folder(settings: Settings) -> Path:
    """The Spark bench's local dir (its tables and metastore under spark/): the demo's Spark tables stay as they are."""
    return settings.local_dir / "bench" / "spark-local"


def measure(settings: Settings, plan: SparkPlan, end_date: date) -> Iterator[Record]:
    """Build each size's world on Spark once, then its simulated night with each core count; each record as it is made."""
    with Progress("bench spark", len(plan.sizes) * (1 + len(plan.cores)), "builds") as progress:
        for customers in plan.sizes:
            world = build_world(settings, customers, plan.days, end_date)
            progress.advance()
            yield world
            night, extract = simulate_night(settings)
            for cores in plan.cores:
                record = build_night(settings, world, night, extract, cores)
                progress.advance()
                yield record


def build_world(settings: Settings, customers: int, days: int, end_date: date) -> Record:
    """The demo world on Postgres (where the simulation runs) and as Parquet on Spark, built there in full and kept aside."""
    loader.generate_and_load(
        customers=customers, days=days, seed=1, end_date=end_date, settings=settings, i_mean_database=BENCH_DATABASE
    )
    folder = spark_folder(settings)
    shutil.rmtree(folder, ignore_errors=True)
    load_before = os.getloadavg()[0]
    with PeakMemory(settings) as peaks:
        child = _in_fresh_process(settings, "world", WORLD_CORES, end_date, (customers, days))
    kept = folder.with_name("spark-world")
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(folder, kept)
    return Record(
        "spark_world", customers, days, seconds=child["seconds"],
        bytes={f"world_{name}": value for name, value in peaks.as_dict().items()},
        figures={"sale_rows": child["sale_rows"], "cores": child["cores"], "load_average_before": load_before,
                 "load_average_after": os.getloadavg()[0]},
    )


def simulate_night(settings: Settings) -> tuple[date, dict[str, pd.DataFrame]]:
    """Append one simulated night on Postgres (the demo's rates); the night and its extract: the rows it loaded."""
    data = simulation.advance(settings, days=1, i_mean_database=BENCH_DATABASE)
    extract = {}
    for table in EXTRACT_KEYS:
        columns = loader.CUSTOMER_COLUMNS if table == "customers" else loader.SALE_COLUMNS
        extract[table] = db.read_frame(settings, EXTRACT_QUERY.format(columns=", ".join(columns), table=table))
    return data.night, extract


def build_night(settings: Settings, world: Record, night: date, extract: dict[str, pd.DataFrame], cores: int) -> Record:
    """On a fresh copy of the world, the night's extract applied, then the night built, scored and published."""
    folder = spark_folder(settings)
    shutil.rmtree(folder)
    shutil.copytree(folder.with_name("spark-world"), folder)
    load_before = os.getloadavg()[0]
    with PeakMemory(settings) as peaks:
        child = _in_fresh_process(settings, "night", cores, night, extract)
    changed, total = len(extract["sales"]), child["sale_rows"]
    seconds = child["seconds"]
    return Record(
        "spark_night", world.customers, world.history_days,
        seconds={**seconds, "night": seconds["night_build"] + seconds["score_publish"]},
        bytes={f"night_{name}": value for name, value in peaks.as_dict().items()},
        figures={"cores": cores, "changed_sale_rows": changed, "sale_rows": total,
                 "changed_share": changed / total, "labelled": child["labelled"],
                 "load_average_before": load_before, "load_average_after": os.getloadavg()[0]},
    )


def curves(records: list[Record], plan: SparkPlan) -> list[Curve]:
    """The night's seconds against cores at each size, and against customers at each core count (two sizes or more)."""
    nights = [record for record in records if record.section == "spark_night"]
    drawn = [
        Curve(f"spark-cores-{size}", f"executor cores at {size:,} customers (local Spark)", sorted(
            (night.figures["cores"], night.seconds["night"]) for night in nights if night.customers == size
        ), NIGHT_SECONDS)
        for size in plan.sizes
    ]
    if len(plan.sizes) > 1:
        drawn += [
            Curve(f"spark-customers-{cores}-cores", f"customers on {cores} executor cores (local Spark)", sorted(
                (night.customers, night.seconds["night"]) for night in nights if night.figures["cores"] == cores
            ), NIGHT_SECONDS)
            for cores in plan.cores
        ]
    return drawn


def lines(records: list[Record]) -> list[str]:
    """The figures as printed: each world's write and full build, then each night by core count."""
    printed = []
    for record in records:
        seconds, figures = record.seconds, record.figures
        load = f"load average {figures['load_average_before']:.1f} -> {figures['load_average_after']:.1f}"
        if record.section == "spark_world":
            printed += [
                f"spark: {record.customers:,} customers, {figures['sale_rows']:,} sale rows over {record.history_days} days",
                f"  write as Parquet: {seconds['write_parquet']:.1f} s; full dbt build on {figures['cores']} cores: "
                f"{seconds['full_build']:.1f} s; peak {record.bytes['world_peak_bench_bytes'] / 2**20:,.0f} MiB "
                f"(JVM included); {load}",
            ]
        else:
            printed.append(
                f"  night ({figures['changed_sale_rows']:,} sale rows, {figures['changed_share']:.2%}) on "
                f"{figures['cores']} cores: dbt build {seconds['night_build']:.1f} s + score and publish "
                f"{seconds['score_publish']:.1f} s = {seconds['night']:.1f} s, {seconds['night_cpu']:.1f} s of CPU "
                f"(session start {seconds['session_start']:.1f} s); "
                f"peak {record.bytes['night_peak_bench_bytes'] / 2**20:,.0f} MiB; {load}"
            )
    return printed


def _in_fresh_process(settings: Settings, step: str, cores: int, night: date, payload: object) -> dict:
    return fresh_process.run("custlabel.devtools.benchmarks.spark_curves", (settings, step, cores, night, payload),
                             f"Spark {step} on {cores} cores")


def _child(job_path: Path) -> dict:
    """A step on Spark with the job's cores, in this process's own session."""
    settings, step, cores, night, payload = pickle.loads(job_path.read_bytes())
    local = dataclasses.replace(settings, local_dir=spark_folder(settings), target="spark")
    variables = {"CUSTLABEL_SPARK_CORES": str(cores), "CUSTLABEL_LOCAL_DIR": str(local.local_dir),
                 "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri, "CUSTLABEL_TARGET": "spark"}
    with exported(variables):
        return _world(local, night, *payload) if step == "world" else _night(local, night, payload)


def _world(settings: Settings, end_date: date, customers: int, days: int) -> dict:
    spark = spark_session.local_session(settings)
    started = time.perf_counter()
    spark_master_data.replace_master_data(spark, settings, customers, days, 1, end_date)
    written = time.perf_counter()
    dbt_runner.run(settings, spark_night.BUILD, target="spark", as_of_date=end_date.isoformat())
    built = time.perf_counter()
    sale_rows = spark.table("master_data.sales").count()
    return {"seconds": {"write_parquet": written - started, "full_build": built - written}, "sale_rows": sale_rows,
            "cores": int(os.environ["CUSTLABEL_SPARK_CORES"])}


def _night(settings: Settings, night: date, extract: dict[str, pd.DataFrame]) -> dict:
    started = time.perf_counter()
    spark = spark_session.local_session(settings)
    spark.sql("select 1").collect()
    session = time.perf_counter()
    for table, rows in extract.items():
        apply_extract(spark, settings, table, rows)
    sale_rows = spark.table("master_data.sales").count()
    applied, cpu_before = time.perf_counter(), cpu_seconds()
    dbt_runner.run(settings, spark_night.BUILD, target="spark", as_of_date=night.isoformat())
    built = time.perf_counter()
    labels = spark_night.score_and_publish(Night(as_of_date=night, target="spark")).labels
    published = time.perf_counter()
    return {"seconds": {"session_start": session - started, "apply_extract": applied - session,
                        "night_build": built - applied, "score_publish": published - built,
                        "night_cpu": cpu_seconds() - cpu_before},
            "labelled": labels.customers, "sale_rows": sale_rows}


def cpu_seconds() -> float:
    """CPU seconds (user and system) used so far by this process and its descendants, the JVM and its Python workers.

    Unlike wall time, it does not grow when neighbours take the machine's cores: the figure to extrapolate from.
    """
    me = psutil.Process()
    used = sum(me.cpu_times())  # user, system, and the children waited for
    for child in me.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        used += times.user + times.system + times.children_user + times.children_system
    return used


def apply_extract(spark, settings: Settings, table: str, rows: pd.DataFrame) -> None:
    """A night's extract into a master-data table on Spark: the rows of its keys replaced by the extract's.

    Parquet cannot update rows: the table is written anew beside the old one and renamed in its place.
    """
    types = spark_master_data.spark_column_types(contract.load(settings.project_dir)[table])
    key = EXTRACT_KEYS[table]
    arrived = spark.createDataFrame(pa.Table.from_pandas(rows, preserve_index=False)).selectExpr(*(
        f"cast({name if name in rows.columns else 'null'} as {spark_type}) as {name}" for name, spark_type in types.items()
    ))
    name = f"{contract.SCHEMA}.{table}"
    kept = spark.table(name).join(arrived.select(key).distinct(), key, "left_anti")
    kept.unionByName(arrived).write.format("parquet").saveAsTable(f"{name}__next")
    spark.sql(f"drop table {name}")
    spark.sql(f"alter table {name}__next rename to {name}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        import json

        print(json.dumps(_child(Path(sys.argv[2]))))
    else:
        sys.exit("usage: python -m custlabel.devtools.benchmarks.spark_curves --child JOB (custlabel bench runs it)")
