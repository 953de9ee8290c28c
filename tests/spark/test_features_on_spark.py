"""The same dbt project on a local Spark session and on Postgres, from the same demo master data:
customer_features has the same rows and every column agrees within 1e-9, customer_outcomes gives the
same "bad" labels, the same scikit-learn pipeline scores tonight's rows read from either engine within
1e-6, and the master-data contract test (matches_contract) holds on Spark."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import pytest

from custlabel.config import Settings
from custlabel.demo import loader, spark_master_data
from custlabel.training import model_families
from custlabel.training.features import LABEL_COLUMN
from custlabel.warehouse import db, dbt_runner, spark_session
from helpers.engine_frames import assert_same_rows

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 6, 30)
FIRST_NIGHT = date(2026, 6, 29)
WORLD = {"customers": 300, "days": 540, "seed": 5, "end_date": NIGHT}
# Four monthly nights and two nights of this week: every model and macro of a longer history at a test's cost.
VARS = {"feature_history_months": 3}
BUILD = ["build", "--select", "+customer_outcomes", "--resource-type", "model", "--resource-type", "snapshot"]
TABLES = ("customer_features", "customer_outcomes")
KEYS = ["customer_id", "as_of_date"]
SALE_COLUMNS = ", ".join(loader.SALE_COLUMNS)
# Between the two nights' builds, new versions of a week of sales (appended with a later updated_at, as
# `custlabel load --mode append` does): the second build's snapshots close their old versions. The same SQL on
# both engines.
NEW_VERSIONS = f"""
insert into master_data.sales ({SALE_COLUMNS})
select {SALE_COLUMNS.replace("amount", "amount * 3").replace("updated_at", "timestamp '2026-06-30 10:00:00'")}
from master_data.sales
where status = 'completed' and sold_at >= timestamp '2026-05-01 00:00:00' and sold_at < timestamp '2026-05-08 00:00:00'
"""


def _built_on_postgres(settings: Settings) -> dict[str, pd.DataFrame]:
    loader.generate_and_load(settings=settings, i_mean_database=settings.connection.dbname, **WORLD)
    dbt_runner.run(settings, BUILD, target="prod", as_of_date=FIRST_NIGHT, extra_vars=VARS)
    with db.connect(settings) as conn:
        assert conn.execute(NEW_VERSIONS).rowcount > 10
    dbt_runner.run(settings, BUILD, target="prod", as_of_date=NIGHT, extra_vars=VARS)
    return {
        table: db.read_frame(settings, f"select * from analytics.{table} order by as_of_date, customer_id")
        for table in TABLES
    }


@pytest.fixture(scope="module")
def built_on_spark(make_database, tmp_path_factory: pytest.TempPathFactory):
    """The tables built on Postgres and on local Spark from the same demo world, night after night, and the Spark
    settings."""
    postgres = make_database("spark_twin")
    expected = _built_on_postgres(postgres)
    settings = dataclasses.replace(postgres, local_dir=tmp_path_factory.mktemp("spark-local"))
    spark = spark_session.local_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    spark_master_data.replace_master_data(spark, settings, **WORLD)
    dbt_runner.run(settings, BUILD, target="spark", as_of_date=FIRST_NIGHT, extra_vars=VARS)
    spark.sql(NEW_VERSIONS)
    dbt_runner.run(settings, BUILD, target="spark", as_of_date=NIGHT, extra_vars=VARS)
    built = {
        table: spark.sql(f"select * from analytics_spark.{table} order by as_of_date, customer_id").toArrow().to_pandas()
        for table in TABLES
    }
    closed = spark.sql("select count(*) from analytics_spark_snapshots.sales_snapshot where dbt_valid_to is not null")
    assert closed.collect()[0][0] > 10
    yield settings, expected, built
    spark.stop()


def test_customer_features_on_spark_equal_postgres(built_on_spark):
    _, expected, actual = built_on_spark
    assert len(expected["customer_features"]) > 300 and expected["customer_features"]["as_of_date"].nunique() == 6
    assert_same_rows(actual["customer_features"], expected["customer_features"], KEYS)


def test_the_labels_on_spark_are_postgres_labels(built_on_spark):
    _, expected, actual = built_on_spark
    labels, spark_labels = expected["customer_outcomes"], actual["customer_outcomes"]
    assert len(labels) > 200 and labels[LABEL_COLUMN].nunique() == 2
    assert_same_rows(spark_labels, labels, KEYS)


def test_the_same_pipeline_scores_spark_rows_as_postgres_rows(built_on_spark):
    """Fitted on Postgres's matured nights, it scores tonight's rows read from each engine alike."""
    _, expected, actual = built_on_spark
    training = expected["customer_features"].merge(expected["customer_outcomes"], on=["customer_id", "as_of_date"])
    pipeline = model_families.build_pipeline(model_families.get("logistic_regression").make(0))
    pipeline.fit(training, training[LABEL_COLUMN])
    tonight = {
        engine: tables["customer_features"][tables["customer_features"]["as_of_date"] == NIGHT].reset_index(drop=True)
        for engine, tables in (("postgres", expected), ("spark", actual))
    }
    scores = {engine: pipeline.predict_proba(rows)[:, 1] for engine, rows in tonight.items()}
    threshold = float(np.quantile(scores["postgres"], 0.8))
    assert len(scores["postgres"]) > 100
    assert np.abs(scores["spark"] - scores["postgres"]).max() <= 1e-6
    same_labels = (scores["spark"] >= threshold) == (scores["postgres"] >= threshold)
    assert same_labels.mean() >= 0.999


def test_the_master_data_contract_holds_on_spark(built_on_spark):
    settings, _, _ = built_on_spark
    result = dbt_runner.run(settings, ["test", "--select", "test_name:matches_contract"], target="spark",
                            as_of_date=NIGHT, extra_vars=VARS)
    assert result.nodes == 2 and not result.warnings
