"""`custlabel compare-engines`: one night's features, labels and scores on Spark against the same night on Postgres.

The bars are issue 26's: features within 1e-9, the same label for at least 99.9% of the customers, scores
within 1e-6. Each engine's night is read from its own tables (customer_features, customer_label_history).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from custlabel.config import Settings, schema_for
from custlabel.scoring.writeback import HISTORY
from custlabel.warehouse import db

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

FEATURE_BAR = 1e-9
SAME_LABEL_BAR = 0.999
SCORE_BAR = 1e-6
KEY = "customer_id"
LABEL_COLUMNS = [KEY, "label", "score"]


@dataclass(frozen=True)
class EngineNight:
    """One engine's night: its customer_features rows and its published labels."""

    features: pd.DataFrame
    labels: pd.DataFrame


@dataclass(frozen=True)
class Agreement:
    """How far the two engines' nights are apart, against the bars."""

    as_of_date: dt.date
    postgres_rows: int
    spark_rows: int
    customers_in_both: int
    feature_difference: float
    same_labels: float
    score_difference: float

    def failures(self) -> list[str]:
        """The bars the night fails, named."""
        failed = []
        if self.postgres_rows != self.spark_rows or self.customers_in_both != self.postgres_rows:
            failed.append(f"customers: {self.postgres_rows:,} labelled on Postgres, {self.spark_rows:,} on Spark,"
                          f" {self.customers_in_both:,} in both")
        if not self.feature_difference <= FEATURE_BAR:
            failed.append(f"features: largest difference {self.feature_difference:.3g} (bar {FEATURE_BAR:g})")
        if not self.same_labels >= SAME_LABEL_BAR:
            failed.append(f"labels: {self.same_labels:.2%} the same (bar {SAME_LABEL_BAR:.1%})")
        if not self.score_difference <= SCORE_BAR:
            failed.append(f"scores: largest difference {self.score_difference:.3g} (bar {SCORE_BAR:g})")
        return failed

    def lines(self) -> list[str]:
        """The figures, then the verdict."""
        failed = self.failures()
        return [
            f"night {self.as_of_date}, Spark against Postgres:",
            f"  customers labelled: {self.postgres_rows:,} on Postgres, {self.spark_rows:,} on Spark,"
            f" {self.customers_in_both:,} in both",
            f"  largest feature difference: {self.feature_difference:.3g} (bar {FEATURE_BAR:g})",
            f"  the same label: {self.same_labels:.3%} of the customers (bar {SAME_LABEL_BAR:.1%})",
            f"  largest score difference: {self.score_difference:.3g} (bar {SCORE_BAR:g})",
            "  agree: every bar met" if not failed else "  DISAGREE: " + "; ".join(failed),
        ]


def _largest_difference(left: pd.DataFrame, right: pd.DataFrame) -> float:
    """The largest absolute difference of any column of two frames with the same rows (in the same order): a
    value on one side and null on the other, or two different texts, are infinitely apart."""
    largest = 0.0
    for column in right.columns:
        a, b = left[column], right[column]
        a_null, b_null = a.isna().to_numpy(), b.isna().to_numpy()
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            apart = np.abs(a.astype(float).to_numpy() - b.astype(float).to_numpy())
        else:
            apart = np.where(a.astype(object).to_numpy() != b.astype(object).to_numpy(), np.inf, 0.0)
        apart = np.where(a_null & b_null, 0.0, np.where(a_null | b_null, np.inf, apart))
        largest = max(largest, float(np.max(apart, initial=0.0)))
    return largest


def compare(as_of_date: dt.date, postgres: EngineNight, spark: EngineNight) -> Agreement:
    """The two nights against each other, customer by customer."""
    both = sorted(set(postgres.labels[KEY]) & set(spark.labels[KEY]))
    everyone = set(postgres.labels[KEY]) | set(spark.labels[KEY])
    labels = {engine: night.labels.set_index(KEY).loc[both] for engine, night in (("postgres", postgres), ("spark", spark))}
    features = {engine: night.features.set_index(KEY).sort_index() for engine, night in (("postgres", postgres), ("spark", spark))}
    in_features = features["postgres"].index.intersection(features["spark"].index)
    unmatched_features = len(features["postgres"]) + len(features["spark"]) - 2 * len(in_features)
    feature_columns = sorted(set(features["postgres"].columns) | set(features["spark"].columns))
    if unmatched_features or set(features["postgres"].columns) != set(features["spark"].columns):
        feature_difference = float("inf")
    else:
        feature_difference = _largest_difference(
            features["spark"].loc[in_features, feature_columns], features["postgres"].loc[in_features, feature_columns]
        )
    same = (labels["postgres"]["label"].to_numpy() == labels["spark"]["label"].to_numpy()).sum()
    scores_apart = np.abs(labels["postgres"]["score"].to_numpy(float) - labels["spark"]["score"].to_numpy(float))
    return Agreement(
        as_of_date=as_of_date,
        postgres_rows=len(postgres.labels),
        spark_rows=len(spark.labels),
        customers_in_both=len(both),
        feature_difference=feature_difference,
        same_labels=float(same / len(everyone)) if everyone else 0.0,
        score_difference=float(np.max(scores_apart, initial=0.0)),
    )


def newest_spark_night(spark: SparkSession) -> dt.date:
    """The newest night labelled on Spark."""
    night = spark.sql(f"select max(as_of_date) from {schema_for('spark')}.{HISTORY}").collect()[0][0]
    if night is None:
        raise ValueError("no night labelled on Spark yet: run `custlabel nightly --target spark` first")
    return night


def read_spark(spark: SparkSession, as_of_date: dt.date) -> EngineNight:
    """The night's features and labels on Spark."""
    database = schema_for("spark")
    night = f"where as_of_date = date'{as_of_date}'"

    def read(query: str) -> pd.DataFrame:
        return spark.sql(query).toArrow().to_pandas()

    return EngineNight(
        features=read(f"select * from {database}.customer_features {night}"),
        labels=read(f"select {', '.join(LABEL_COLUMNS)} from {database}.{HISTORY} {night}"),
    )


def read_postgres(settings: Settings, as_of_date: dt.date) -> EngineNight:
    """The night's features and labels on Postgres (the settings' database and target)."""
    schema = schema_for(settings.target)
    night = {"night": as_of_date}
    return EngineNight(
        features=db.read_frame(settings, f"select * from {schema}.customer_features where as_of_date = :night", night),
        labels=db.read_frame(
            settings, f"select {', '.join(LABEL_COLUMNS)} from {schema}.{HISTORY} where as_of_date = :night", night
        ),
    )
