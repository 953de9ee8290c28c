"""`custlabel nightly --target spark` on a demo world: the night built on local Spark, labelled and published
there, agrees with the same night on Postgres (labels, scores and reasons of the rule baseline)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from prefect.testing.utilities import prefect_test_harness

from custlabel.config import Settings, get_settings, schema_for
from custlabel.demo import loader, spark_master_data
from custlabel.nightly import serving, spark_night
from custlabel.warehouse import db, dbt_runner, spark_session

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 6, 30)
WORLD = {"customers": 300, "days": 540, "seed": 9, "end_date": NIGHT}
# Four monthly nights and tonight; the demo's loads are months old on this night: judged, not stopped.
VARS = {"feature_history_months": 3, "freshness": "warn"}
COLUMNS = ["customer_id", "label", "score", "reason_1", "reason_2", "reason_3"]


def _rule_labels_on_postgres(settings: Settings) -> pd.DataFrame:
    loader.generate_and_load(settings=settings, i_mean_database=settings.connection.dbname, **WORLD)
    dbt_runner.run(settings, spark_night.BUILD, target="prod", as_of_date=NIGHT, extra_vars=VARS)
    return db.read_frame(
        settings, f"select {', '.join(COLUMNS)} from analytics.rule_baseline_scores"
        f" where as_of_date = '{NIGHT}' order by customer_id",
    )


@pytest.fixture(scope="module")
def nights(make_database, tmp_path_factory: pytest.TempPathFactory):
    """The night's rule labels on Postgres, and the nightly flow run with --target spark on a fresh local Spark
    warehouse with the same master data and a registry of its own (no champion yet, as on a first night)."""
    postgres = make_database("spark_night")
    expected = _rule_labels_on_postgres(postgres)
    local = tmp_path_factory.mktemp("spark-night")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUSTLABEL_LOCAL_DIR", str(local))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{local / 'mlflow.db'}")
        settings = get_settings()
        spark = spark_session.local_session(settings)
        spark.sparkContext.setLogLevel("ERROR")
        spark_master_data.replace_master_data(spark, settings, **WORLD)
        with serving.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
            summary = serving.run_once(settings, as_of_date=NIGHT, target="spark", dbt_vars=VARS)
    yield spark, summary, expected
    spark.stop()


def _published(spark, table: str) -> pd.DataFrame:
    return spark.sql(f"select * from {schema_for('spark')}.{table} order by customer_id").toPandas()


def test_the_night_on_spark_labels_as_postgres_does(nights) -> None:
    spark, _, expected = nights
    published = _published(spark, "customer_labels")
    assert len(published) == len(expected) > 250
    assert published["customer_id"].tolist() == expected["customer_id"].tolist()
    agreement = (published["label"].to_numpy() == expected["label"].to_numpy()).mean()
    assert agreement >= 0.999, f"{agreement:.2%} of the labels agree"
    np.testing.assert_allclose(published["score"], expected["score"], atol=1e-6, rtol=0)
    for column in ("reason_1", "reason_2", "reason_3"):
        assert published[column].fillna("").tolist() == expected[column].fillna("").tolist(), column
    assert set(published["model_name"]) == {"rule-baseline"} and set(published["as_of_date"]) == {NIGHT}


def test_the_night_is_kept_in_the_history_and_summarized(nights) -> None:
    spark, summary, expected = nights
    history = _published(spark, "customer_label_history")
    assert set(history["as_of_date"]) == {NIGHT} and len(history) == len(expected)
    lines = summary.splitlines()
    assert lines[0].startswith(f"night {NIGHT} on Spark: {len(expected):,} customers labelled by rule-baseline")
    assert lines[1].startswith("  source freshness: 2 sources judged")
    assert "on the spark target" in lines[2]
    assert "in analytics_spark.customer_labels" in lines[3]
