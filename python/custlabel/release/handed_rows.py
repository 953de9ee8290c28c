"""Rows of a Spark target, read by the parent and handed to a child process as a Parquet file.

The smoke test and the computational gate measure a version in a fresh process. On Spark that
child would otherwise start a Spark session of its own: a second JVM beside the parent's, on a
local warehouse whose embedded metastore (Derby) one process holds at a time. The parent reads
the rows from its session instead and the child reads the file, so what the child measures is
the version (its load, its scoring), as on Postgres, not a session's start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from custlabel.config import Settings
from custlabel.scoring import score
from custlabel.training import rule_baseline
from custlabel.warehouse import spark_session

RULE_SCORE = "rule_score"


@dataclass(frozen=True)
class HandedTonight:
    """Tonight's columns (name → the engine's type) and a sample of tonight's rows in a Parquet file."""

    columns: dict[str, str]
    sample: Path


def tonight(settings: Settings, database: str, rows: int, folder: Path) -> HandedTonight:
    """customer_features_current's columns and types, and its first rows by md5 of customer_id (the smoke sample)."""
    spark = spark_session.local_session(settings)
    table = f"`{database}`.`{score.CURRENT_FEATURES}`"
    if not spark.catalog.tableExists(f"{database}.{score.CURRENT_FEATURES}"):
        return HandedTonight({}, folder / "tonight.parquet")
    columns = dict(spark.table(table).dtypes)
    sample = folder / "tonight.parquet"
    pq.write_table(spark.sql(f"select * from {table} order by md5(customer_id) limit {int(rows)}").toArrow(), sample)
    return HandedTonight(columns, sample)


def night_rows(settings: Settings, database: str, night: date, folder: Path) -> Path:
    """Every feature row of the night, ordered by md5 of customer_id (so its head is the scorer's sample),
    with the rule baseline's score of each customer (RULE_SCORE)."""
    spark = spark_session.local_session(settings)
    rows = spark.sql(
        f"select f.*, r.score as {RULE_SCORE} from `{database}`.`{score.FEATURE_HISTORY}` as f"
        f" left join `{database}`.`{rule_baseline.RELATION}` as r on r.customer_id = f.customer_id and r.as_of_date = f.as_of_date"
        " where f.as_of_date = :night order by md5(f.customer_id)",
        args={"night": night},
    )
    path = folder / "night.parquet"
    pq.write_table(rows.toArrow(), path)
    return path
