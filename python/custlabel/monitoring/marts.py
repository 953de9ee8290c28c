"""Where the monitoring marts are read: the target's engine, Postgres or Spark (the `spark` target).

The readers (alert rules, headline figures, the report) ask for rows with a SELECT that both
engines read, its values as named parameters (`:night`) and its marts by `name()`
(custlabel.warehouse.engine_schemas).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from custlabel.config import Settings, monitoring_schema
from custlabel.warehouse.engine_schemas import PostgresSchema, Schema, SparkSchema

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The monitoring schema is read as any schema of the target is (custlabel.warehouse.engine_schemas).
Marts = Schema
PostgresMarts = PostgresSchema
SparkMarts = SparkSchema


def on_postgres(settings: Settings, schema: str) -> PostgresMarts:
    """The monitoring marts of a Postgres target schema (e.g. analytics)."""
    return PostgresMarts(settings, monitoring_schema(schema))


def on_spark(spark: SparkSession, database: str) -> SparkMarts:
    """The monitoring marts of a Spark target database (e.g. analytics_spark)."""
    return SparkMarts(spark, monitoring_schema(database))
