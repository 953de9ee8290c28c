"""The alert rules (alerts.yml) evaluated on Spark into `<database>_monitoring.alerts` there.

Judged from the monitoring marts on Spark by the rules of custlabel.monitoring.alerts; the
table is Parquet, its nights partitions (a night evaluated again replaces its rows).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from custlabel.monitoring import alerts
from custlabel.monitoring import marts as monitoring_marts

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The columns of the Postgres table (alerts.DDL) in Spark's types; the night last, as its partition.
COLUMNS = (
    "rule string, metric string, value double, threshold double, direction string, breaches int, k int, n int,"
    " state string, evaluated_at timestamp, run_id string, as_of_date date"
)
ROW = "rule string, metric string, value double, threshold double, direction string, breaches int, k int, n int, state string"


def evaluate(
    spark: SparkSession, database: str, night: date, config: alerts.AlertConfig, run_id: str = ""
) -> list[alerts.Alert]:
    """Evaluate every rule for a night, replace the night's rows in the alerts table, notify changes."""
    marts = monitoring_marts.on_spark(spark, database)
    table = marts.name(alerts.TABLE)
    spark.sql(f"create database if not exists `{marts.schema}`")
    spark.sql(f"create table if not exists {table} ({COLUMNS}) using parquet partitioned by (as_of_date)")
    previous = dict(marts.frame(
        f"select rule, max_by(state, as_of_date) as state from {table} where as_of_date < :night group by rule",
        {"night": night},
    ).itertuples(index=False, name=None))
    evaluated = alerts.judge_all(marts, config, night, previous)
    rows = [(a.rule, a.metric, a.value, a.threshold, a.direction, a.breaches, a.k, a.n, a.state) for a in evaluated]
    spark.createDataFrame(rows, ROW).createOrReplaceTempView("tonights_alerts")
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    spark.sql(
        f"insert overwrite table {table} partition (as_of_date)"
        " select *, current_timestamp() as evaluated_at, :run_id as run_id, :night as as_of_date from tonights_alerts",
        args={"run_id": run_id, "night": night},
    )
    moved = alerts.changed(evaluated, previous)
    if config.notify.url and moved:
        alerts.notify(config.notify.url, database, night, moved)
    return evaluated
