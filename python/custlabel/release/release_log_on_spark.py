"""A copy of the release log on Spark, for BI that reads Spark: `<database>.model_releases`.

The release log itself stays in Postgres (release_log): the lifecycle needs its appends to
be transactional with the run's lock, which Spark tables do not give. Each Spark night
appends the events its copy lacks (the log is append-only, so the copy never rewrites a
row a reader may be reading); details are JSON text.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from custlabel.config import Settings
from custlabel.release import release_log

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

COLUMNS = (
    "event_id bigint, occurred_at timestamp, target string, event string, model_name string, model_version string,"
    " as_of_date date, actor string, reason string, details string"
)


def publish(spark: SparkSession, settings: Settings, database: str) -> int:
    """Append to the copy on Spark the target's release events it does not hold yet; returns how many."""
    table = f"`{database}`.`{release_log.TABLE}`"
    spark.sql(f"create database if not exists `{database}`")
    spark.sql(f"create table if not exists {table} ({COLUMNS}) using parquet")
    copied = {row[0] for row in spark.table(table).select("event_id").collect()}
    missing = [
        (event.event_id, event.occurred_at, settings.target, event.event, event.model_name, event.model_version,
         event.as_of_date, event.actor, event.reason, json.dumps(event.details, sort_keys=True, default=str))
        for event in release_log.history(settings) if event.event_id not in copied
    ]
    if missing:
        spark.createDataFrame(missing, COLUMNS).write.insertInto(table)
    return len(missing)
