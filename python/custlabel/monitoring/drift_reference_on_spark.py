"""A model version's reference bins on Spark, for the drift marts there (feature_bin_shares, feature_drift).

A version's bins are written to Postgres when it is registered (drift_reference.store; training runs there).
The first night the version labels on Spark copies them, unchanged, to `<database>_monitoring.model_reference_bins`
on Spark, where the marts' source reads them: the same reference, so the same drift on both engines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from custlabel.config import Settings, monitoring_schema
from custlabel.monitoring.drift_reference import TABLE
from custlabel.warehouse import db

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

COLUMNS = [
    ("model_name", "string"), ("model_version", "string"), ("feature", "string"), ("kind", "string"), ("bin", "int"),
    ("lower_edge", "double"), ("upper_edge", "double"), ("category", "string"), ("reference_rows", "bigint"),
    ("reference_share", "double"), ("stored_at", "timestamp"),
]


def _held_on_spark(spark: SparkSession, table: str, model_name: str, model_version: str) -> bool:
    return spark.sql(
        f"select 1 from {table} where model_name = :name and model_version = :version limit 1",
        args={"name": model_name, "version": model_version},
    ).count() > 0


def copy_to_spark(
    spark: SparkSession, database: str, settings: Settings, postgres_schema: str, model_name: str, model_version: str,
) -> int:
    """Copy a version's reference bins from Postgres (the monitoring schema of postgres_schema) to the monitoring
    database of `database` on Spark, unless Spark holds them already; returns the bins copied."""
    monitoring = monitoring_schema(database)
    table = f"`{monitoring}`.`{TABLE}`"
    spark.sql(f"create database if not exists `{monitoring}`")
    spark.sql(f"create table if not exists {table} ({', '.join(f'{n} {t}' for n, t in COLUMNS)}) using parquet")
    if _held_on_spark(spark, table, model_name, str(model_version)):
        return 0
    query = sql.SQL("select {} from {} where model_name = %(name)s and model_version = %(version)s").format(
        sql.SQL(", ").join(sql.Identifier(name) for name, _ in COLUMNS),
        sql.Identifier(monitoring_schema(postgres_schema), TABLE),
    )
    with db.connect(settings) as conn:
        if not db.relation_exists(conn, monitoring_schema(postgres_schema), TABLE):
            return 0
        rows = conn.execute(query, {"name": model_name, "version": str(model_version)}).fetchall()
    if rows:
        schema = ", ".join(f"{name} {spark_type}" for name, spark_type in COLUMNS)
        spark.createDataFrame(rows, schema).write.insertInto(table)
    return len(rows)
