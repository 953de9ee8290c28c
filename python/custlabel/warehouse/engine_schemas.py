"""A schema of a target on its engine, Postgres or Spark (the `spark` target), read with SQL both engines read.

Its readers (the monitoring marts, the triggers, training's rows) ask for rows with a SELECT
whose values are named parameters (`:night`) and whose tables come from `name()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
from psycopg import sql

from custlabel.config import Settings, is_spark
from custlabel.warehouse import db, spark_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class Schema(Protocol):
    """One schema of a target, on its engine."""

    schema: str

    def name(self, table: str) -> str:
        """A table of the schema, quoted for the engine's SQL."""

    def exists(self, table: str) -> bool:
        """Whether the table is built."""

    def frame(self, query: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """The rows of a SELECT with named parameters."""


@dataclass(frozen=True)
class PostgresSchema:
    """A target's schema on Postgres."""

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
class SparkSchema:
    """A target's database on Spark."""

    spark: SparkSession
    schema: str

    def name(self, table: str) -> str:
        return f"`{self.schema}`.`{table}`"

    def exists(self, table: str) -> bool:
        return self.spark.catalog.tableExists(f"{self.schema}.{table}")

    def frame(self, query: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.spark.sql(query, args=params or {}).toPandas()


def of_target(settings: Settings, schema: str) -> Schema:
    """A schema of the settings' target on its engine: Spark for a Spark target, else Postgres."""
    if is_spark(settings.target):
        return SparkSchema(spark_session.local_session(settings), schema)
    return PostgresSchema(settings, schema)
