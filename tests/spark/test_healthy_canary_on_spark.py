"""The healthy canary on Spark nights, under the shipped release.yml and acceptance.yml: a version validated with its
score distribution (recorded as `custlabel validate` records it) and approved is the canary for release.yml's
`canary.nights` nights, passes every check each night as it does on Postgres, is promoted, and labels every customer
the next night; the release log holds the same events as on Postgres for the same world, and its copy on Spark too.

The world is the flow tests' (2,000 customers): the canary's slice (10%) must be large enough for its score PSI
against its validation to measure the model, not the noise of a few dozen customers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from custlabel.config import DEFAULT_PROJECT_DIR, Settings, get_settings, schema_for
from custlabel.demo import loader, spark_master_data
from custlabel.nightly import night_steps, spark_night
from custlabel.release import approval, lifecycle, release_log, release_policy, rollout, score_distribution
from custlabel.training import registry
from custlabel.warehouse import db, spark_session
from helpers.release_path import newest_matured_night, record_scored_validation, register_stand_in
from helpers.stores import engine_home

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]

SHIPPED = release_policy.read_file(DEFAULT_PROJECT_DIR / release_policy.FILE_NAME)
FIRST = date(2026, 7, 1)
# The canary's nights, then the promoted version's first night as champion.
NIGHTS = [FIRST + timedelta(days=n) for n in range(SHIPPED.canary.nights + 1)]
WORLD = {"customers": 2_000, "days": 540, "seed": 5, "end_date": FIRST}
# The nights after FIRST replay the same data: its sources are days old by then.
VARS = {"feature_history_months": 3, "freshness": "warn"}
ENGINES = ("postgres", "spark")
# The checks that judge the canary itself (against the rule baseline the comparisons are reported only).
GATED = {"canary_scores_present", "canary_bad_share", "canary_validation_psi", "canary_estimated_precision",
         "canary_scoring"}
LABELS = "select customer_id, model_name, model_version, score, label from {}.customer_labels order by customer_id"


def validated_and_approved(settings: Settings) -> str:
    """The stand-in registered for the target, validated with its scores on the newest matured night, approved."""
    version = register_stand_in(settings)
    record_scored_validation(settings, version, newest_matured_night(settings))
    approval.approve(settings, version, "alice", "validation report reviewed")
    return version


def run_nights(target: str, build: Callable[[night_steps.Night], object], engine: night_steps.LabelEngine,
               read_labels: Callable[[], pd.DataFrame]) -> dict:
    """Each night's build and release steps (the canary started, tonight's labels published, its checks on a
    canary night); the stand-in is approved after the first night's build."""
    nights, version = [], None
    for as_of in NIGHTS:
        night = night_steps.plan(as_of, target, retrain=False, dbt_vars=VARS)
        build(night)
        version = version or validated_and_approved(night.settings())
        state = night_steps.prepare_release(night)
        published = night_steps.score_and_publish(night, engine)
        verdict = night_steps.check_canary(night, published, engine) if published.canary_version else None
        nights.append({"state": state, "published": published, "verdict": verdict, "labels": read_labels()})
    settings = night.settings()
    return {"version": version, "nights": nights, "policy": night_steps.release_policy(night), "settings": settings,
            "night": night, "events": [(e.event, e.model_version, e.as_of_date) for e in release_log.history(settings)]}


@pytest.fixture(scope="module")
def engines(make_database, tmp_path_factory: pytest.TempPathFactory):
    """The same master data and the same stand-in on each engine, its nights run there."""
    database = make_database("spark_healthy_canary")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGDATABASE", database.connection.dbname)
        with engine_home(tmp_path_factory.mktemp("postgres-canary")):
            settings = get_settings()
            loader.generate_and_load(settings=settings, i_mean_database=settings.connection.dbname, **WORLD)
            postgres = run_nights("prod", night_steps.build, night_steps.POSTGRES,
                                  lambda: db.read_frame(settings, LABELS.format("analytics")))
        with engine_home(tmp_path_factory.mktemp("spark-canary")):
            settings = get_settings()
            spark = spark_session.local_session(settings)
            spark_master_data.replace_master_data(spark, settings, **WORLD)
            on_spark = run_nights("spark", spark_night.build, spark_night.ON_SPARK,
                                  lambda: spark.sql(LABELS.format(schema_for("spark"))).toPandas())
            yield {"postgres": postgres, "spark": on_spark, "spark_session": spark}
    spark.stop()


def _checks(verdict: night_steps.CanaryVerdict) -> pd.DataFrame:
    return pd.DataFrame(verdict.checks).set_index("name")


def test_the_nights_are_judged_by_the_shipped_release_policy(engines) -> None:
    assert engines["postgres"]["policy"] == engines["spark"]["policy"] == SHIPPED


def test_the_validation_recorded_the_same_score_distribution_on_spark_as_on_postgres(engines) -> None:
    postgres, on_spark = (
        score_distribution.from_tags(registry.version_tags(engines[engine]["settings"])[engines[engine]["version"]])
        for engine in ENGINES
    )
    assert on_spark.rows == postgres.rows > 1_000
    assert on_spark.edges == pytest.approx(postgres.edges, abs=1e-6)
    assert on_spark.shares == pytest.approx(postgres.shares, abs=1 / postgres.rows)


def test_the_canary_passes_every_check_each_night_on_spark_as_on_postgres(engines) -> None:
    version = engines["spark"]["version"]
    for number in range(SHIPPED.canary.nights):
        postgres, on_spark = (engines[engine]["nights"][number] for engine in ENGINES)
        assert on_spark["published"].canary_version == version
        verdict = on_spark["verdict"]
        assert (verdict.version, verdict.healthy, verdict.healthy_nights) == (version, True, number + 1), verdict.outcome
        assert verdict.outcome == postgres["verdict"].outcome
        checks, expected = _checks(verdict), _checks(postgres["verdict"])
        assert set(checks.index[checks["gated"]]) == GATED
        assert checks.loc[checks["gated"], "passed"].all()
        assert checks.index.tolist() == expected.index.tolist()
        assert checks[["passed", "gated"]].equals(expected[["passed", "gated"]])
        for name in expected.index.drop("canary_scoring"):  # the time each engine took
            assert checks.loc[name, "reason"] == expected.loc[name, "reason"], name
            assert checks.loc[name, "figures"] == pytest.approx(expected.loc[name, "figures"], abs=1e-6, nan_ok=True), name


def test_the_canary_labels_its_slice_on_spark_as_on_postgres_each_night(engines) -> None:
    version = engines["spark"]["version"]
    for number in range(SHIPPED.canary.nights):
        postgres, on_spark = (engines[engine]["nights"][number]["labels"] for engine in ENGINES)
        assert on_spark["customer_id"].tolist() == postgres["customer_id"].tolist()
        assert on_spark[["model_name", "model_version", "label"]].equals(postgres[["model_name", "model_version", "label"]])
        np.testing.assert_allclose(on_spark["score"], postgres["score"], atol=1e-6, rtol=0)
        assert 150 < (on_spark["model_version"] == version).sum() < 250


def test_after_the_shipped_canary_nights_the_version_is_promoted_on_spark(engines) -> None:
    on_spark = engines["spark"]
    version, settings, needed = on_spark["version"], on_spark["settings"], SHIPPED.canary.nights
    outcomes = [night["verdict"].outcome for night in on_spark["nights"][:needed]]
    assert outcomes == [f"healthy ({n} of {needed} nights)" for n in range(1, needed)] + [
        f"healthy ({needed} of {needed} nights): promoted to champion"]
    assert lifecycle.read(settings).champion == version
    assert registry.alias_versions(settings)["champion"] == version
    assert registry.version_tags(settings)[version][rollout.CANARY_STATUS] == "promoted"


def test_the_promoted_version_labels_every_customer_on_spark_the_next_night(engines) -> None:
    on_spark, postgres = engines["spark"], engines["postgres"]
    version, settings, last = on_spark["version"], on_spark["settings"], on_spark["nights"][-1]
    assert (last["state"].champion, last["state"].canary) == (version, None)
    assert last["published"].canary_version is None and last["verdict"] is None
    labels, expected = last["labels"], postgres["nights"][-1]["labels"]
    assert set(zip(labels["model_name"], labels["model_version"], strict=True)) == {(settings.model_name, version)}
    assert len(labels) == last["published"].labels.customers > 1_500
    assert labels["customer_id"].tolist() == expected["customer_id"].tolist()
    assert labels["label"].tolist() == expected["label"].tolist()
    np.testing.assert_allclose(labels["score"], expected["score"], atol=1e-6, rtol=0)
    history = engines["spark_session"].sql(
        f"select model_version, count(*) from {schema_for('spark')}.customer_label_history"
        f" where as_of_date = date'{NIGHTS[-1]}' group by 1").collect()
    assert [tuple(row) for row in history] == [(version, len(labels))]


def test_the_release_log_holds_the_same_events_as_on_postgres_and_its_copy_on_spark_too(engines) -> None:
    on_spark, version = engines["spark"], engines["spark"]["version"]
    assert on_spark["events"] == engines["postgres"]["events"]
    canary_nights = NIGHTS[:SHIPPED.canary.nights]
    assert [(event, model_version) for event, model_version, _ in on_spark["events"]] == [
        ("trained", version), ("validated", version), ("approved", version), ("canary_started", version),
        *[("canary_night", version)] * len(canary_nights), ("promoted", version)]
    assert [as_of for event, _, as_of in on_spark["events"] if event == "canary_night"] == canary_nights
    assert on_spark["events"][-1][2] == canary_nights[-1]
    spark_night.publish_release_log(on_spark["night"])
    copied = engines["spark_session"].sql(
        f"select event, model_version, as_of_date from {schema_for('spark')}.model_releases order by event_id").collect()
    assert [tuple(row) for row in copied] == on_spark["events"]
