"""Where the monitoring marts are read: the target's engine, Postgres or Spark (the `spark` target).

The readers (alert rules, headline figures, the report) ask for rows with a SELECT that both
engines read, its values as named parameters (`:night`) and its marts by `name()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
from psycopg import sql

from custlabel.config import Settings, monitoring_schema
from custlabel.warehouse import db

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class Marts(Protocol):
    """The monitoring schema of one target, on its engine."""

    schema: str

    def name(self, table: str) -> str:
        """A table of the schema, quoted for the engine's SQL."""

    def exists(self, table: str) -> bool:
        """Whether the table is built."""

    def frame(self, query: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """The rows of a SELECT with named parameters."""


@dataclass(frozen=True)
class PostgresMarts:
    """A target's monitoring schema on Postgres."""

    settings: Settings
    schema: str

    def name(self, table: str) -> str:
        return sql.Identifier(self.schema, table).as_string()

    def exists(self, table: str) -> bool:
        with db.connect(self.settings) as conn:
            return db.relation_exists(conn, self.schema, table)

    def frame(self, query: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return db.read_frame(self.settings, query, params)


@dataclass(frozen=True)
class SparkMarts:
    """A target's monitoring database on Spark."""

    spark: SparkSession
    schema: str

    def name(self, table: str) -> str:
        return f"`{self.schema}`.`{table}`"

    def exists(self, table: str) -> bool:
        return self.spark.catalog.tableExists(f"{self.schema}.{table}")

    def frame(self, query: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.spark.sql(query, args=params or {}).toPandas()


def on_postgres(settings: Settings, schema: str) -> PostgresMarts:
    """The monitoring marts of a Postgres target schema (e.g. analytics)."""
    return PostgresMarts(settings, monitoring_schema(schema))


def on_spark(spark: SparkSession, database: str) -> SparkMarts:
    """The monitoring marts of a Spark target database (e.g. analytics_spark)."""
    return SparkMarts(spark, monitoring_schema(database))
