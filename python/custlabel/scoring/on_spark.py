"""Labels a night on Spark and publishes it there, under the contract of the Postgres write-back.

Scoring runs the Python engine's own batch labelling (score.label_batch) over Arrow batches
(mapInArrow), so a registered pipeline gives the same scores, labels and reasons on both
engines. Publishing writes tonight's labels to a table of their own, judges them with the
same checks (writeback.judge_night, judge_rate_change, one row per customer), replaces
tonight's partition of the history, and only then shows them to readers in one statement:
`customer_labels` is a view re-pointed at tonight's table. A night that fails a check, or a
run killed before that statement, leaves readers on the previous night.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
from psycopg import sql

from custlabel.errors import CustlabelError
from custlabel.scoring import canary_slice, reasons, score, writeback
from custlabel.training import threshold_cut
from custlabel.training.deployed_model import DeployedModel
from custlabel.warehouse import contract, freshness, retry

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SCORE_SCHEMA = "customer_id string, score double, label string"
LABEL_SCHEMA = (
    "customer_id string, label string, score double, threshold double, model_name string, model_version string,"
    " as_of_date date, reason_1 string, reason_2 string, reason_3 string"
)
# The history's columns: the partition column (as_of_date) last, as Spark keeps it.
HISTORY_COLUMNS = [
    "customer_id", "label", "score", "threshold", "model_name", "model_version", "reason_1", "reason_2", "reason_3",
    "scored_at",
]
BAD_RATE = "coalesce(avg(if(label = 'bad', 1.0D, 0.0D)), 0.0D)"


def newest_loads(spark: SparkSession) -> list[freshness.NewestLoad]:
    """The newest load of each master-data table on Spark, read as freshness.newest_loads reads Postgres."""
    found = []
    for table in freshness.SOURCES:
        name = f"{contract.SCHEMA}.{table}"
        if not spark.catalog.tableExists(name):
            found.append(freshness.NewestLoad(table, None, True))
            continue
        has_load_time = "loaded_at" in spark.table(name).columns
        loaded, changed = spark.sql(
            f"select {'cast(max(loaded_at) as double)' if has_load_time else 'cast(null as double)'},"
            f" cast(max(if(updated_at <= current_timestamp(), updated_at, null)) as double) from {name}"
        ).first()
        found.append(freshness.NewestLoad(table, _instant(loaded), True) if loaded is not None
                     else freshness.NewestLoad(table, _instant(changed), False))
    return found


def _instant(epoch_seconds: float | None) -> dt.datetime | None:
    """A Spark timestamp read as seconds since the epoch: an instant whatever the session's or the process's zone."""
    return None if epoch_seconds is None else dt.datetime.fromtimestamp(epoch_seconds, dt.timezone.utc)


@dataclass(frozen=True)
class Eligible:
    rows: int
    night: dt.date


def eligible(features: DataFrame, expected_night: dt.date | None) -> Eligible:
    """Tonight's feature rows: refused when empty, of several nights, or not of the night expected."""
    from pyspark.sql import functions as F

    rows, nights, night = features.agg(F.count("*"), F.countDistinct("as_of_date"), F.max("as_of_date")).first()
    if rows == 0:
        raise writeback.WriteBackError("no eligible customers tonight: refusing to publish an empty label table")
    if nights != 1:
        raise writeback.WriteBackError(f"the feature rows span {nights} as-of dates instead of one")
    if expected_night is not None and night != expected_night:
        raise writeback.WriteBackError(
            f"the features hold the night {night}, not {expected_night}: build {expected_night} on Spark first"
        )
    return Eligible(rows, night)


def _typed_features(features: DataFrame, feature_columns: list[str]) -> DataFrame:
    """The key and the model's columns with the Python engine's types: numbers as doubles, categories as text."""
    from pyspark.sql import functions as F

    numeric = score.numeric_columns(feature_columns)
    return features.select(
        F.col("customer_id").cast("string"),
        F.col("as_of_date").cast("date"),
        *(F.col(c).cast("double" if c in numeric else "string").alias(c) for c in feature_columns),
    )


def explainer_for(model: DeployedModel, features: DataFrame) -> reasons.ReasonModel:
    """The reason model from the sample the Python engine takes (the first SAMPLE_ROWS by md5 of customer_id)."""
    from pyspark.sql import functions as F

    columns = list(model.feature_columns)
    sample = _typed_features(features, columns).orderBy(F.md5("customer_id")).limit(score.SAMPLE_ROWS).toPandas()
    return reasons.build_reason_model(model.pipeline, columns, sample[columns])


def rule_labels(spark: SparkSession, database: str, rule: DeployedModel, features: DataFrame) -> DataFrame:
    """Tonight's customers labelled by the rule baseline's scores (its dbt model), at its threshold."""
    relation = f"{database}.{rule.relation}"
    if not spark.catalog.tableExists(relation):
        raise CustlabelError(f"no model to score with: no champion in the registry and no {relation}; build it on Spark first")
    threshold = float(rule.threshold)
    label = threshold_cut.label_sql(sql.SQL("r.score"), sql.SQL(repr(threshold))).as_string()
    features.select("customer_id", "as_of_date").createOrReplaceTempView("custlabel_score_input")
    return spark.sql(
        f"select r.customer_id, {label} as label, r.score, {threshold}D as threshold, '{rule.name}' as model_name,"
        f" '{rule.version}' as model_version, r.as_of_date, r.reason_1, r.reason_2, r.reason_3"
        f" from custlabel_score_input as i join {relation} as r"
        " on r.customer_id = i.customer_id and r.as_of_date = i.as_of_date"
    )


def label_night(features: DataFrame, model: DeployedModel, explainer: reasons.ReasonModel) -> DataFrame:
    """customer_id, label, score, threshold, model, as_of_date and reasons of every row of a feature frame."""

    def label(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield from score.label_batch(model, explainer, batch).to_batches()

    return _typed_features(features, list(model.feature_columns)).mapInArrow(label, LABEL_SCHEMA)


def score_night(features: DataFrame, model: DeployedModel) -> DataFrame:
    """customer_id, score and label of every row of a feature frame, without reasons (the canary's shadow)."""
    columns = list(model.feature_columns)
    threshold = float(model.threshold)

    def scored(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            scores = model.scores(batch.select(columns).to_pandas())
            yield pa.RecordBatch.from_pydict({
                "customer_id": batch.column("customer_id"),
                "score": pa.array(scores, pa.float64()),
                "label": pa.array(threshold_cut.labels(scores, threshold), pa.string()),
            })

    return _typed_features(features, columns).mapInArrow(scored, SCORE_SCHEMA)


def in_canary_slice(percent: float) -> str:
    """The Spark SQL condition of the canary slice: the customers whose bucket is below the percent, as on Postgres."""
    return f"{canary_slice.bucket_spark_sql('customer_id')} < {float(percent)!r}"


def slices(
    champion: DeployedModel, canary: DeployedModel | None, percent: float
) -> list[tuple[str, DeployedModel, str | None]]:
    """Who labels which customers tonight (role, model, Spark SQL condition), as score._slices splits them on Postgres."""
    if canary is None or percent <= 0:
        return [("champion", champion, None)]
    if percent >= 100:
        return [("canary", canary, None)]
    rest = f"{canary_slice.bucket_spark_sql('customer_id')} >= {float(percent)!r}"
    return [("canary", canary, in_canary_slice(percent)), ("champion", champion, rest)]


def _label_slice(spark: SparkSession, database: str, model: DeployedModel, features: DataFrame,
                 condition: str | None) -> tuple[DataFrame, str]:
    rows = features if condition is None else features.where(condition)
    if model.is_rule:
        return rule_labels(spark, database, model, rows), "the rule"
    explainer = explainer_for(model, features)  # from the whole night's sample, as the Python engine's
    return label_night(rows, model, explainer), explainer.method


def label_slices(
    spark: SparkSession, database: str, features: DataFrame, champion: DeployedModel, canary: DeployedModel | None,
    percent: float,
) -> tuple[DataFrame, list[score.SliceResult]]:
    """Tonight's labels, slice by slice: the canary on its slice, the champion on the rest.

    Each slice is labelled at once (checkpointed), so that a failure is its own model's and its time is
    its own: a canary that fails raises CanaryScoringError, a registered champion ChampionScoringError.
    """
    parts, results = [], []
    for role, model, condition in slices(champion, canary, percent):
        clock = time.perf_counter()
        try:
            labels, method = _label_slice(spark, database, model, features, condition)
            labels = labels.localCheckpoint()
            rows = labels.count()
        except Exception as error:
            if role == "canary":
                raise score.CanaryScoringError(f"the canary v{model.version} failed to label its slice: {error}") from error
            if not model.is_rule and not retry.is_transient(error):
                raise score.ChampionScoringError(f"{model.name} v{model.version} failed to label its customers: "
                                                 f"{type(error).__name__}: {error}") from error
            raise
        parts.append(labels)
        results.append(score.SliceResult(model.name, str(model.version), role, "spark", rows, method,
                                         seconds=time.perf_counter() - clock))
    return functools.reduce(lambda left, right: left.unionByName(right), parts), results


def _table(database: str, name: str) -> str:
    return f"`{database}`.`{name}`"


def ensure_history(spark: SparkSession, database: str) -> None:
    """The database and the history table (Parquet, a partition per night) when missing."""
    spark.sql(f"create database if not exists `{database}`")
    spark.sql(
        f"create table if not exists {_table(database, writeback.HISTORY)} ({LABEL_SCHEMA}, scored_at timestamp)"
        " using parquet partitioned by (as_of_date)"
    )


def _previous_night(spark: SparkSession, database: str, night: dt.date) -> tuple[dt.date | None, float | None]:
    history = _table(database, writeback.HISTORY)
    row = spark.sql(
        f"select as_of_date, {BAD_RATE} from {history}"
        f" where as_of_date = (select max(as_of_date) from {history} where as_of_date < date'{night}')"
        " group by as_of_date"
    ).first()
    return (row[0], row[1]) if row else (None, None)


def _check(spark: SparkSession, database: str, table: str, night: dt.date, expected_rows: int,
           max_bad_share: float, max_label_rate_change: float, force: bool) -> writeback.CheckResult:
    row = spark.sql(
        f"select count(*), count_if(label is null), count(distinct as_of_date), {BAD_RATE},"
        f" count(*) - count(distinct customer_id), count_if(as_of_date <> date'{night}') from {table}"
    ).first()
    figures = writeback.NightFigures(*row[:4])
    writeback.judge_night(figures, expected_rows, max_bad_share)
    if row[4]:
        raise writeback.WriteBackError(f"{row[4]} customers have more than one label tonight")
    if row[5]:
        raise writeback.WriteBackError(f"{row[5]} of tonight's labels are of another night than {night}")
    return writeback.judge_rate_change(figures, *_previous_night(spark, database, night), max_label_rate_change, force)


def _label_tables(spark: SparkSession, database: str) -> list[str]:
    prefix = f"{writeback.LABELS}__"
    return [t.name for t in spark.catalog.listTables(database) if t.name.startswith(prefix) and not t.isTemporary]


def _view_target(spark: SparkSession, database: str) -> str | None:
    """The table the label view shows now, or None before the first night."""
    if not spark.catalog.tableExists(f"{database}.{writeback.LABELS}"):
        return None
    plan = spark.sql(f"show create table {_table(database, writeback.LABELS)}").first()[0]
    return next((name for name in _label_tables(spark, database) if name in plan), None)


def publish_night(
    spark: SparkSession,
    database: str,
    labels: DataFrame,
    night: dt.date,
    expected_rows: int,
    max_bad_share: float = 1.0,
    max_label_rate_change: float = writeback.DEFAULT_MAX_LABEL_RATE_CHANGE,
    force: bool = False,
) -> writeback.CheckResult:
    """Write tonight's labels aside, check them, keep them in the history and show them to readers.

    The previous night's table stays (a reader's query in flight still finds it); older ones are dropped.
    """
    from pyspark.sql import functions as F

    ensure_history(spark, database)
    name = f"{writeback.LABELS}__{night:%Y%m%d}_{uuid.uuid4().hex[:8]}"
    table = _table(database, name)
    labels.withColumn("scored_at", F.current_timestamp()).write.format("parquet").saveAsTable(f"{database}.{name}")
    try:
        result = _check(spark, database, table, night, expected_rows, max_bad_share, max_label_rate_change, force)
    except writeback.WriteBackError:
        spark.sql(f"drop table if exists {table}")
        raise
    shown = _view_target(spark, database)
    spark.sql(
        f"insert overwrite table {_table(database, writeback.HISTORY)} partition (as_of_date = date'{night}')"
        f" select {', '.join(HISTORY_COLUMNS)} from {table}"
    )
    spark.sql(f"create or replace view {_table(database, writeback.LABELS)} as select * from {table}")
    for old in _label_tables(spark, database):
        if old not in (name, shown):
            spark.sql(f"drop table if exists {_table(database, old)}")
    return result
