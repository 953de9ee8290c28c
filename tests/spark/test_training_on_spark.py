"""A retraining night on Spark (`custlabel nightly --target spark`, no model yet: the bootstrap trigger fires):
training_set built on Spark equals Postgres's for the same master data, the version is trained from Spark's rows
(the same sample as Postgres's) and validated in the Spark test environment by the shipped acceptance.yml."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from prefect.testing.utilities import prefect_test_harness

from custlabel.config import Settings, get_settings
from custlabel.demo import spark_master_data
from custlabel.nightly import night_steps, serving
from custlabel.monitoring import alerts
from custlabel.release import lifecycle, release_policy, smoke, triggers
from custlabel.training import acceptance, model_search, registry, training_data
from custlabel.warehouse import db, engine_schemas, spark_session
from helpers.demo_warehouse import flow_demo
from helpers.engine_frames import assert_same_rows
from helpers.night_config import SMALL_SEARCH

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 6, 30)
# The flow tests' world (whose night one trains a version that passes every gate on Postgres).
DEMO = flow_demo(NIGHT)
WORLD = {"customers": DEMO.customers, "days": DEMO.days, "seed": DEMO.seed, "end_date": DEMO.end_date}
VARS = {"freshness": "warn"}
KEYS = ["customer_id", "as_of_date"]
# Below a night's customers (about 2,000), so that training's sample is a sample.
CAP = 500
# A champion whose newest training night was a year before: labels have matured since.
CHAMPION_TAGS = {"test_date": "2025-06-01"}


def _sample(settings: Settings) -> training_data.TrainingData:
    config = model_search.sized(settings.search)
    return training_data.load(settings, config.validation_dates, config.train_rows_per_date, config.eval_rows_per_date)


def _capped(settings: Settings, schema: str) -> pd.DataFrame:
    """Every night's rows at most CAP a night: the hash's pre-filter and the stratified cut at work."""
    source = engine_schemas.of_target(settings, schema)
    summary = training_data.read_summary(source)
    return training_data.read_rows(source, summary, tuple(pd.to_datetime(summary["as_of_date"]).dt.date), CAP)


def _measured(settings: Settings, schema: str, tags: dict[str, str]) -> list[tuple]:
    """The triggers that read the warehouse, measured against a champion with these tags: (name, fired, value)."""
    policy, rules = release_policy.load(settings), alerts.load(settings)
    criteria = acceptance.load(settings=settings)
    champion = "1"
    measured = [
        triggers.data_drift(settings, schema, champion, NIGHT, policy, rules),
        triggers.matured_labels(settings, schema, tags, policy),
        triggers.performance(settings, schema, champion, NIGHT, criteria, policy, rules),
    ]
    return [(t.name, t.fired, t.value, t.reason) for t in measured]


def _on_postgres(make_database, local) -> dict:
    """The night on Postgres from the same master data (built, labelled by the rule, its alerts evaluated):
    its training_set, training's sample of it, and the triggers measured against a champion tested a year before."""
    base = make_database("spark_training", demo=DEMO)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGDATABASE", base.connection.dbname)
        patch.setenv("CUSTLABEL_LOCAL_DIR", str(local))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{local / 'mlflow.db'}")
        tonight = night_steps.plan(NIGHT, "prod", retrain=False, dbt_vars=VARS)
        night_steps.build(tonight)
        night_steps.score_and_publish(tonight)
        night_steps.refresh_label_monitoring(tonight)
        night_steps.evaluate_alerts(tonight)
        settings = tonight.settings()
        return {"training_set": db.read_frame(settings, "select * from analytics.training_set"), "sample": _sample(settings),
                "capped": _capped(settings, "analytics"), "triggers": _measured(settings, "analytics", CHAMPION_TAGS)}


@pytest.fixture(scope="module")
def night(make_database, tmp_path_factory: pytest.TempPathFactory):
    """The Postgres figures, then the nightly flow with --target spark, retrain and auto-approve on a fresh local
    Spark warehouse with the same master data, a registry and release log of its own."""
    expected = _on_postgres(make_database, tmp_path_factory.mktemp("postgres-training"))
    local = tmp_path_factory.mktemp("spark-training")
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in {**SMALL_SEARCH, "CUSTLABEL_LOCAL_DIR": str(local), "CUSTLABEL_AUTO_APPROVE": "1",
                                "MLFLOW_TRACKING_URI": f"sqlite:///{local / 'mlflow.db'}"}.items():
            patch.setenv(variable, value)
        settings = get_settings()
        spark = spark_session.local_session(settings)
        spark_master_data.replace_master_data(spark, settings, **WORLD)
        with serving.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
            summary = serving.run_once(settings, as_of_date=NIGHT, target="spark", retrain=True, dbt_vars=VARS)
        spark_settings = night_steps.plan(NIGHT, "spark", retrain=False).settings()
        yield {"spark": spark, "settings": spark_settings, "summary": summary, "expected": expected,
               "sample": _sample(spark_settings), "capped": _capped(spark_settings, "analytics_spark"),
               "triggers": _measured(spark_settings, "analytics_spark", CHAMPION_TAGS)}
    spark.stop()


def test_training_set_on_spark_equals_postgres(night) -> None:
    built = night["spark"].sql("select * from analytics_spark.training_set").toArrow().to_pandas()
    expected = night["expected"]["training_set"]
    assert len(expected) > 1000 and expected["as_of_date"].nunique() > 5
    assert_same_rows(built, expected, KEYS)


def test_training_reads_the_same_sample_from_spark(night) -> None:
    spark, postgres = night["sample"], night["expected"]["sample"]
    assert spark.plan == postgres.plan
    for part in ("train", "validation", "test"):
        assert_same_rows(getattr(spark, part), getattr(postgres, part), KEYS)
    pd.testing.assert_frame_equal(spark.summary.reset_index(drop=True), postgres.summary.reset_index(drop=True),
                                  check_dtype=False)
    capped = night["capped"]
    assert_same_rows(capped, night["expected"]["capped"], KEYS)
    per_night = capped.groupby("as_of_date").size()
    assert per_night.max() <= CAP + 1 and per_night.min() >= CAP - 1, per_night


def test_the_night_trains_a_version_from_sparks_rows_and_validates_it(night) -> None:
    settings, postgres, lines = night["settings"], night["expected"]["sample"], night["summary"].splitlines()
    (version,) = registry.version_tags(settings)
    tags = registry.version_tags(settings)[version]
    assert (tags["train_rows"], tags["validation_rows"], tags["test_rows"]) == (
        str(len(postgres.train)), str(len(postgres.validation)), str(len(postgres.test)))
    assert tags["test_date"] == str(postgres.plan.test_date)
    assert any(line.startswith("triggers fired: requested") and line.endswith("→ retrain") for line in lines), lines
    assert f"training: version {version} " in night["summary"] and "passed every training gate" in night["summary"]
    assert f"validation: version {version} passed every validation gate" in night["summary"]
    assert lifecycle.read(settings).state_of(version) == lifecycle.APPROVED
    assert tags["validation_status"] == "passed"
    assert "target=spark_test schema=analytics_spark_test" in tags["validated_on"]
    assert "not run on Spark" not in tags["validated_on"]
    assert tags["gate_smoke"].startswith(f"passed: models:/{settings.model_name}/{version} loaded in a fresh process"), tags
    assert tags["gate_computational"].startswith("passed: "), tags
    assert "challenger " in tags["gate_computational_vs_champion"] and "spark engine" in tags["gate_computational_vs_champion"]
    assert not any("FAILED" in line for line in lines), lines


def test_a_version_whose_file_changed_fails_smoke_on_spark(night) -> None:
    (version,) = registry.version_tags(night["settings"])
    settings = replace(night["settings"], target="spark_test")
    uri = MlflowClient(settings.mlflow_tracking_uri).get_model_version_download_uri(settings.model_name, version)
    mlmodel = Path(uri.removeprefix("file://")) / "MLmodel"
    original = mlmodel.read_text()
    mlmodel.write_text(original + "# changed after registration\n")
    try:
        gate = smoke.check_on_spark(settings, version, settings.schema)
    finally:
        mlmodel.write_text(original)
    assert not gate.passed and "refused" in gate.reason and "MLmodel changed since registration" in gate.reason, gate


def test_the_triggers_read_sparks_tables_as_postgres_s(night) -> None:
    measured, expected = night["triggers"], night["expected"]["triggers"]
    assert measured == expected
    data, matured, _ = measured
    assert data[3].startswith("alerts ") and matured[2] > 1000, measured
