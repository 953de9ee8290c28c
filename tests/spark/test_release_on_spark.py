"""The release on a Spark night, under the shipped release.yml and acceptance.yml: an approved version is tonight's
canary on the same customer slice as on Postgres, its checks read the labels published on Spark and reach
Postgres's verdict on the same master data, and the failing canary is rolled back with the champion's labels
republished on Spark. The release log stays in Postgres and is copied to Spark; a second run while one holds the
target's lock stops."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from prefect.testing.utilities import prefect_test_harness
from psycopg import sql

from custlabel.config import Settings, get_settings, schema_for
from custlabel.demo import loader, spark_master_data
from custlabel.nightly import night_steps, serving, spark_night
from custlabel.release import approval, release_log, release_policy, rollout
from custlabel.scoring import canary_slice
from custlabel.training import registry
from custlabel.warehouse import db, locking, spark_session
from helpers.release_path import record_validation, register_stand_in
from helpers.stores import engine_home

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 7, 1)
WORLD = {"customers": 300, "days": 540, "seed": 5, "end_date": NIGHT}
VARS = {"feature_history_months": 3}
LABELS = "select customer_id, model_name, model_version, score, label from {}.customer_labels order by customer_id"


def register_approved(settings: Settings, missing_feature: str | None = None) -> str:
    """A stand-in model registered for the night's target (helpers.release_path.register_stand_in), validated and
    approved."""
    version = register_stand_in(settings, missing_feature)
    record_validation(settings, version)
    approval.approve(settings, version, "alice", "validation report reviewed")
    return version


def canary_night(night: night_steps.Night, engine: night_steps.LabelEngine, read_labels) -> dict:
    """The release steps of a night: the canary started, tonight's labels published, then its checks."""
    state = night_steps.prepare_release(night)
    published = night_steps.score_and_publish(night, engine)
    labelled = read_labels()
    verdict = night_steps.check_canary(night, published, engine)
    return {"state": state, "published": published, "labelled": labelled, "verdict": verdict,
            "republished": read_labels(), "events": [(e.event, e.model_version) for e in release_log.history(night.settings())]}


@pytest.fixture(scope="module")
def nights(make_database, tmp_path_factory: pytest.TempPathFactory):
    """The same master data and the same approved stand-in model on each engine, the night run there."""
    database = make_database("spark_release")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGDATABASE", database.connection.dbname)
        with engine_home(tmp_path_factory.mktemp("postgres-release")):
            settings = get_settings()
            loader.generate_and_load(settings=settings, i_mean_database=settings.connection.dbname, **WORLD)
            night = night_steps.plan(NIGHT, "prod", retrain=False, dbt_vars=VARS)
            night_steps.build(night)
            version = register_approved(night.settings())
            postgres = canary_night(night, night_steps.POSTGRES,
                                    lambda: db.read_frame(settings, LABELS.format("analytics")))
        with engine_home(tmp_path_factory.mktemp("spark-release")):
            settings = get_settings()
            spark = spark_session.local_session(settings)
            spark_master_data.replace_master_data(spark, settings, **WORLD)
            night = night_steps.plan(NIGHT, "spark", retrain=False, dbt_vars=VARS)
            spark_night.build(night)
            assert register_approved(night.settings()) == version
            on_spark = canary_night(night, spark_night.ON_SPARK,
                                    lambda: spark.sql(LABELS.format(schema_for("spark"))).toPandas())
            yield {"postgres": postgres, "spark": on_spark, "version": version, "night": night, "spark_session": spark}
    spark.stop()


def test_spark_buckets_customers_as_postgres_and_python_do(nights) -> None:
    ids = [f"C{n:06d}" for n in range(2000)] + ["", " ", "zoë-42", "客户-7", "a'b", "x" * 200]
    spark = nights["spark_session"]
    on_spark = dict(spark.createDataFrame([(i,) for i in ids], "customer_id string")
                    .selectExpr("customer_id", f"{canary_slice.bucket_spark_sql()} as bucket").collect())
    with db.connect(get_settings()) as conn:
        # The ids as a literal: the bucket's modulo sign would be read as a placeholder beside bound parameters.
        on_postgres = dict(conn.execute(sql.SQL("select customer_id, {} from unnest({}::text[]) as ids (customer_id)")
                                        .format(canary_slice.bucket_sql(), sql.Literal(ids))).fetchall())
    expected = {i: canary_slice.bucket(i) for i in ids}
    assert on_spark == on_postgres == expected
    assert len(set(expected.values())) == canary_slice.BUCKETS


def test_the_approved_version_is_tonights_canary_on_the_same_slice_as_on_postgres(nights) -> None:
    version, percent = nights["version"], release_policy.load(get_settings()).canary.percent
    postgres, on_spark = nights["postgres"]["labelled"], nights["spark"]["labelled"]
    for engine in ("postgres", "spark"):
        state, published = nights[engine]["state"], nights[engine]["published"]
        assert (state.canary, published.canary_version, published.canary_percent) == (version, version, percent)
        assert [part.role for part in published.labels.slices] == ["canary", "champion"]
    assert len(on_spark) == len(postgres) > 250
    assert on_spark["customer_id"].tolist() == postgres["customer_id"].tolist()
    assert (on_spark[["model_name", "model_version"]].to_numpy() == postgres[["model_name", "model_version"]].to_numpy()).all()
    canary = on_spark["model_version"] == version
    in_slice = on_spark["customer_id"].map(canary_slice.bucket) < percent
    assert canary.tolist() == in_slice.tolist() and 10 < canary.sum() < 60
    assert set(on_spark.loc[~canary, "model_name"]) == {"rule-baseline"}
    np.testing.assert_allclose(on_spark.loc[canary, "score"], postgres.loc[canary, "score"], atol=1e-6, rtol=0)
    assert nights["spark"]["published"].labels.slices[0].engine == "spark"


def _checks(verdict: night_steps.CanaryVerdict) -> pd.DataFrame:
    return pd.DataFrame(verdict.checks).set_index("name")


def test_the_canary_checks_read_from_spark_reach_postgres_verdict(nights) -> None:
    postgres, on_spark = nights["postgres"]["verdict"], nights["spark"]["verdict"]
    assert (on_spark.version, on_spark.healthy, on_spark.outcome) == (postgres.version, postgres.healthy, postgres.outcome)
    expected, checks = _checks(postgres), _checks(on_spark)
    assert checks.index.tolist() == expected.index.tolist()
    assert checks[["passed", "gated"]].equals(expected[["passed", "gated"]])
    for name in expected.index:
        if name == "canary_scoring":  # the time each engine took
            continue
        assert checks.loc[name, "reason"] == expected.loc[name, "reason"], name
        assert checks.loc[name, "figures"] == pytest.approx(expected.loc[name, "figures"], abs=1e-6, nan_ok=True), name
    assert not on_spark.healthy and "canary_validation_psi" in on_spark.outcome  # the stand-in has no validation scores


def test_the_failing_canary_is_rolled_back_and_the_champion_republished_on_spark(nights) -> None:
    version, on_spark, postgres = nights["version"], nights["spark"], nights["postgres"]
    assert on_spark["events"] == postgres["events"]
    assert on_spark["events"][-3:] == [("canary_started", version), ("canary_night", version), ("rolled_back", version)]
    republished = on_spark["republished"]
    assert set(republished["model_name"]) == {"rule-baseline"} and len(republished) == len(on_spark["labelled"])
    assert republished["customer_id"].tolist() == postgres["republished"]["customer_id"].tolist()
    spark = nights["spark_session"]
    history = spark.sql(f"select model_name, count(*) from {schema_for('spark')}.customer_label_history"
                        f" where as_of_date = date'{NIGHT}' group by 1").collect()
    assert [tuple(row) for row in history] == [("rule-baseline", len(republished))]
    assert registry.version_tags(nights["night"].settings())[version][rollout.CANARY_STATUS] == "rolled_back"
    assert "republished by rule-baseline" in on_spark["verdict"].outcome


def test_the_release_log_is_copied_to_spark_once(nights) -> None:
    night, spark = nights["night"], nights["spark_session"]
    events = release_log.history(night.settings())
    assert spark_night.publish_release_log(night) == len(events) > 0
    assert spark_night.publish_release_log(night) == 0
    copied = spark.sql(f"select event_id, event, model_version from {schema_for('spark')}.model_releases"
                       " order by event_id").collect()
    assert [tuple(row) for row in copied] == [(e.event_id, e.event, e.model_version) for e in events]


def test_a_second_spark_night_while_one_holds_the_lock_stops(nights) -> None:
    settings = nights["night"].settings()
    with locking.hold(settings, schema_for("spark"), owner="swift-heron 1234"):
        with serving.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
            with pytest.raises(locking.RunLockedError, match="in progress: custlabel nightly swift-heron 1234"):
                serving.run_once(settings, as_of_date=NIGHT, target="spark", dbt_vars=VARS)


def test_a_canary_that_cannot_label_its_slice_on_spark_is_rolled_back_and_the_champion_labels_all(nights) -> None:
    night, spark = nights["night"], nights["spark_session"]
    version = register_approved(night.settings(), missing_feature="no_such_feature")
    assert night_steps.prepare_release(night).canary == version
    published = spark_night.score_and_publish(night)
    assert published.canary_version is None
    assert published.canary_rolled_back.startswith("the canary failed to label its slice")
    assert "no_such_feature" in published.canary_rolled_back
    labels = spark.sql(LABELS.format(schema_for("spark"))).toPandas()
    assert set(labels["model_name"]) == {"rule-baseline"} and len(labels) == published.labels.customers > 250
    events = [(e.event, e.model_version) for e in release_log.history(night.settings())]
    assert events[-3:] == [("canary_started", version), ("canary_night", version), ("rolled_back", version)]
