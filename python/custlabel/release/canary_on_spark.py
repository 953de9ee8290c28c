"""The canary checks' figures read on Spark, where a Spark night publishes its labels (canary_health reads Postgres).

The slice is the same customers as on Postgres (canary_slice's bucket in Spark SQL). The
champion's shadow labels of the slice are kept on Spark too, in
`<database>.canary_shadow_labels` (a partition per night and canary version), for the
realized precision of later nights.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from psycopg import sql

from custlabel.config import Settings
from custlabel.release import canary_health
from custlabel.scoring import on_spark, score, writeback
from custlabel.training import rule_baseline, threshold_cut
from custlabel.training.deployed_model import DeployedModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SHADOW_COLUMNS = "customer_id string, model_name string, model_version string, score double, label string"


def _table(database: str, name: str) -> str:
    return f"`{database}`.`{name}`"


def night_features(spark: SparkSession, database: str, as_of: date) -> DataFrame:
    """The night's rows of the feature mart on Spark."""
    return spark.table(_table(database, score.FEATURE_HISTORY)).where(f"as_of_date = date'{as_of}'")


def shadow_labels(spark: SparkSession, database: str, champion: DeployedModel, features: DataFrame, as_of: date,
                  percent: float) -> DataFrame:
    """The champion's scores and labels of tonight's canary slice (customer_id, score, label)."""
    in_slice = on_spark.in_canary_slice(percent)
    if champion.is_rule:
        label = threshold_cut.label_sql(sql.SQL("score"), sql.SQL(repr(float(champion.threshold)))).as_string()
        relation = _table(database, champion.relation or rule_baseline.RELATION)
        return spark.table(relation).where(f"as_of_date = date'{as_of}'").where(in_slice).selectExpr(
            "customer_id", "cast(score as double) as score", f"{label} as label")
    return on_spark.score_night(features.where(in_slice), champion)


def _store_shadow(spark: SparkSession, database: str, as_of: date, canary_version: str, champion: DeployedModel,
                  shadow: DataFrame) -> None:
    table = _table(database, canary_health.SHADOW)
    spark.sql(f"create table if not exists {table} ({SHADOW_COLUMNS}, as_of_date date, canary_version string)"
              " using parquet partitioned by (as_of_date, canary_version)")
    shadow.createOrReplaceTempView("custlabel_canary_shadow")
    spark.sql(
        f"insert overwrite table {table} partition (as_of_date = date'{as_of}', canary_version = '{canary_version}')"
        f" select customer_id, '{champion.name}', '{champion.version}', score, label from custlabel_canary_shadow"
    )


def read_night(
    spark: SparkSession, settings: Settings, database: str, as_of: date, canary_model: DeployedModel,
    champion: DeployedModel, percent: float, seconds: float,
) -> canary_health.SliceNight:
    """Tonight's slice on Spark: the canary's published labels, and the champion's shadow labels (stored on Spark)."""
    version = str(canary_model.version)
    published = spark.table(_table(database, writeback.LABELS)).where(
        f"model_name = '{canary_model.name}' and model_version = '{version}' and as_of_date = date'{as_of}'"
    ).select("score", "label").toPandas()
    features = night_features(spark, database, as_of)
    expected = features.where(on_spark.in_canary_slice(percent)).count()
    _store_shadow(spark, database, as_of, version, champion, shadow_labels(spark, database, champion, features, as_of, percent))
    shadow = spark.table(_table(database, canary_health.SHADOW)).where(
        f"as_of_date = date'{as_of}' and canary_version = '{version}'"
    ).select("score", "label").toPandas()
    return canary_health.slice_night(settings, as_of, expected, published, shadow, canary_model, champion, seconds)


def read_realized(spark: SparkSession, database: str, canary_model: DeployedModel) -> canary_health.Realized | None:
    """Realized precision of the canary's slice nights whose outcome window has matured, and the champion's shadow."""
    tables = {name: _table(database, name) for name in (writeback.HISTORY, canary_health.SHADOW, canary_health.OUTCOMES)}
    if not all(spark.catalog.tableExists(f"{database}.{name}") for name in tables):
        return None
    row = spark.sql(
        "select count(o.is_bad),"
        " avg(if(h.label = 'bad', cast(o.is_bad as double), null)), avg(if(s.label = 'bad', cast(o.is_bad as double), null))"
        f" from {tables[writeback.HISTORY]} as h"
        f" join {tables[canary_health.SHADOW]} as s on s.as_of_date = h.as_of_date and s.customer_id = h.customer_id"
        "  and s.canary_version = h.model_version"
        f" join {tables[canary_health.OUTCOMES]} as o on o.customer_id = h.customer_id and o.as_of_date = h.as_of_date"
        f" where h.model_name = '{canary_model.name}' and h.model_version = '{canary_model.version}'"
    ).first()
    return canary_health.Realized(int(row[0]), row[1], row[2])
