"""The result of every dbt test of every nightly build, kept over time (Elementary-style).

After each `dbt build` of the nightly run, passed or failed, the test results in
dbt's `target/run_results.json` go to `<schema>_monitoring.dbt_test_results`, one
row per invocation and test; the mart `data_test_trends` counts them per night.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from typing import TYPE_CHECKING

from psycopg import sql

from custlabel.config import Settings, dbt_target_dir, monitoring_schema
from custlabel.errors import CustlabelError
from custlabel.warehouse import db

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TABLE = "dbt_test_results"
TEST_KINDS = {"test": "data_test", "unit_test": "unit_test"}

DDL = """
create schema if not exists {schema};
create table if not exists {table} (
    run_id text not null,
    invocation_id text not null,
    as_of_date date not null,
    generated_at timestamptz not null,
    unique_id text not null,
    test_name text not null,
    test_kind text not null check (test_kind in ('data_test', 'unit_test')),
    status text not null,
    failures bigint,
    message text,
    execution_seconds double precision,
    primary key (invocation_id, unique_id)
);
comment on table {table} is 'One row per dbt invocation and test of the nightly builds: status (pass, warn, fail, error, skipped), failing rows, message.'
"""


# The same columns on Spark, a Parquet table (the nights' builds are appended).
SPARK_COLUMNS = (
    "run_id string, invocation_id string, as_of_date date, generated_at timestamp, unique_id string, test_name string,"
    " test_kind string, status string, failures bigint, message string, execution_seconds double"
)


class RunResultsError(CustlabelError):
    """dbt's run_results.json is missing, stale or unreadable."""


@dataclass(frozen=True)
class TestResult:
    """One test of one dbt invocation."""

    unique_id: str
    test_name: str
    test_kind: str
    status: str
    failures: int | None
    message: str | None
    execution_seconds: float


@dataclass(frozen=True)
class RunResults:
    """The tests of one dbt invocation."""

    invocation_id: str
    generated_at: datetime
    tests: list[TestResult]


def results_path(settings: Settings) -> Path:
    """Where dbt writes run_results.json for this project."""
    return dbt_target_dir(settings.project_dir) / "run_results.json"


def parse(document: dict) -> RunResults:
    """The test results of a run_results.json document (models, seeds and snapshots are left out)."""
    try:
        metadata = document["metadata"]
        tests = []
        for result in document["results"]:
            resource = result["unique_id"].split(".", 1)[0]
            if resource not in TEST_KINDS:
                continue
            # test.<project>.<name>[.<hash>]; unit_test.<project>.<model>.<name>
            parts = result["unique_id"].split(".")
            tests.append(TestResult(
                unique_id=result["unique_id"],
                test_name=parts[-1] if resource == "unit_test" else parts[2],
                test_kind=TEST_KINDS[resource],
                status=str(result["status"]),
                failures=result.get("failures"),
                message=result.get("message"),
                execution_seconds=float(result.get("execution_time") or 0.0),
            ))
        generated_at = datetime.fromisoformat(metadata["generated_at"].replace("Z", "+00:00"))
        return RunResults(metadata["invocation_id"], generated_at, tests)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise RunResultsError(f"run_results.json is not what dbt writes ({type(error).__name__}: {error})") from error


def read(path: Path, since: datetime | None = None) -> RunResults:
    """Parse run_results.json; with `since`, refuse results written before it (a stale file)."""
    if not path.exists():
        raise RunResultsError(f"{path} does not exist: dbt has not run in this project yet")
    try:
        results = parse(json.loads(path.read_text()))
    except json.JSONDecodeError as error:
        raise RunResultsError(f"{path} is not JSON: {error}") from error
    if since is not None and results.generated_at < since:
        raise RunResultsError(f"{path} was written at {results.generated_at:%Y-%m-%d %H:%M:%S}, before this build started")
    return results


def store(settings: Settings, schema: str, run_id: str, as_of_date: date, results: RunResults) -> int:
    """Write one invocation's test results (replacing a re-stored invocation); returns the tests stored."""
    monitoring = monitoring_schema(schema)
    table = sql.Identifier(monitoring, TABLE)
    columns = ["run_id", "invocation_id", "as_of_date", "generated_at", *TestResult.__dataclass_fields__]
    with db.connect(settings) as conn:
        conn.execute(sql.SQL(DDL).format(schema=sql.Identifier(monitoring), table=table))
        conn.execute(sql.SQL("delete from {} where invocation_id = %s").format(table), [results.invocation_id])
        statement = sql.SQL("copy {} ({}) from stdin").format(table, sql.SQL(", ").join(map(sql.Identifier, columns)))
        with conn.cursor().copy(statement) as copy:
            for test in results.tests:
                copy.write_row([run_id, results.invocation_id, as_of_date, results.generated_at, test.unique_id,
                                test.test_name, test.test_kind, test.status, test.failures, test.message,
                                test.execution_seconds])
    return len(results.tests)


def store_latest(settings: Settings, schema: str, run_id: str, as_of_date: date, since: datetime) -> int:
    """Store the tests of the dbt invocation that just ran in this project (written after `since`)."""
    return store(settings, schema, run_id, as_of_date, read(results_path(settings), since))


def store_on_spark(spark: SparkSession, database: str, run_id: str, as_of_date: date, results: RunResults) -> int:
    """Append one invocation's test results to the monitoring database on Spark; returns the tests stored."""
    monitoring = monitoring_schema(database)
    spark.sql(f"create database if not exists `{monitoring}`")
    spark.sql(f"create table if not exists `{monitoring}`.`{TABLE}` ({SPARK_COLUMNS}) using parquet")
    rows = [
        (run_id, results.invocation_id, as_of_date, results.generated_at, test.unique_id, test.test_name, test.test_kind,
         test.status, test.failures, test.message, test.execution_seconds)
        for test in results.tests
    ]
    if rows:
        spark.createDataFrame(rows, SPARK_COLUMNS).write.insertInto(f"`{monitoring}`.`{TABLE}`")
    return len(rows)
