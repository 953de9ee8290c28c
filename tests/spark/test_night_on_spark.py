"""`custlabel nightly --target spark` on a demo world, run as an operator runs it: the night built on local Spark,
labelled, published and monitored there, agrees with the same night on Postgres (labels, scores and reasons of the
rule baseline; the monitoring marts and the alert rules' states), writes the report, and prints none of Spark's
warnings. The first night is the one right after the master data ends; `custlabel compare-engines` finds both
nights within issue 26's bars."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import pytest

from custlabel import cli
from custlabel.config import Settings, get_settings, schema_for
from custlabel.demo import loader
from custlabel.monitoring import engine_agreement, pipeline_runs
from custlabel.nightly import night_steps
from custlabel.warehouse import db, spark_session
from helpers.engine_frames import assert_same_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 6, 30)
# Two nights on each engine: the second's drift, trends and alerts read the first's.
NIGHTS = (NIGHT - timedelta(days=1), NIGHT)
# The master data ends the day before the first night (a company's first night right after its extract): judged
# stale, not stopped (freshness warn), and the shipped alert rule stale_source (a load over 24 hours old) fires.
WORLD = {"customers": 300, "days": 540, "seed": 9, "end_date": NIGHTS[0] - timedelta(days=1)}
# The database of the Postgres nights, and of the Spark nights' control plane (lock, run record, release log).
DATABASE = "spark_night"
# Four monthly nights and tonight.
VARS = {"feature_history_months": 3, "freshness": "warn"}
COLUMNS = ["customer_id", "label", "score", "reason_1", "reason_2", "reason_3"]
# The monitoring marts of a night and their keys (scored_at, when the labels were written, differs).
MARTS = {
    "label_rates": ["as_of_date", "model_name", "model_version"],
    "score_drift": ["as_of_date", "model_name", "model_version"],
    "performance_estimates": ["as_of_date", "model_name", "model_version"],
    "source_volumes": ["as_of_date", "source_table"],
    "quarantine_reasons": ["as_of_date", "source_table", "reason"],
    "data_quality_trends": ["as_of_date", "source_table"],
}
# The tests whose SQL was Postgres's alone, now run on Spark by the night's build.
PORTED_TESTS = "test_name like 'assert_%quarantine%' or test_name like 'source_recent_data_at_night%'"
# A line of the JVM's log (Spark's layout: `26/12/06 04:31:02 WARN WindowExec: ...`), its notice of a default level,
# or pyspark's warning about pandas 3 at every conversion.
SPARK_NOISE = re.compile(
    r"^\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} (WARN|ERROR) |Setting default log level|does not yet fully support pandas",
    re.MULTILINE,
)


def _night_on_postgres(settings: Settings, local: Path) -> dict[str, pd.DataFrame]:
    """The nights' steps on Postgres (build, publish, label monitoring, alerts): tonight's rule labels, the marts
    and the alerts."""
    loader.generate_and_load(settings=settings, i_mean_database=settings.connection.dbname, **WORLD)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGDATABASE", settings.connection.dbname)
        patch.setenv("CUSTLABEL_LOCAL_DIR", str(local))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{local / 'mlflow.db'}")
        for as_of_date in NIGHTS:
            night = night_steps.plan(as_of_date, "prod", retrain=False, dbt_vars=VARS)
            night_steps.build(night)
            night_steps.score_and_publish(night)
            night_steps.refresh_label_monitoring(night)
            night_steps.evaluate_alerts(night)
    read = {
        "labels": f"select {', '.join(COLUMNS)} from analytics.rule_baseline_scores where as_of_date = '{NIGHT}'"
                  " order by customer_id",
        "quarantine": "select source_table, record_id, reason from analytics.master_data_quarantine",
        "alerts": "select as_of_date, rule, state, value, breaches from analytics_monitoring.alerts",
        "ported_tests": f"select distinct test_name, status from analytics_monitoring.dbt_test_results where {PORTED_TESTS}",
        **{mart: f"select * from analytics_monitoring.{mart}" for mart in MARTS},
    }
    return {name: db.read_frame(settings, query) for name, query in read.items()}


class Nights(NamedTuple):
    """The Spark session, the last Spark night's summary, the Postgres nights' rows and database, and what the
    Spark commands printed."""

    spark: SparkSession
    summary: str
    on_postgres: dict[str, pd.DataFrame]
    postgres: Settings
    console: str


def _custlabel(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "custlabel.cli", *args], env=env, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def nights(make_database, tmp_path_factory: pytest.TempPathFactory):
    """The nights on Postgres, and on Spark as an operator runs them (`custlabel demo-data --target spark`, then
    `custlabel nightly --target spark` for each night) on a fresh local Spark warehouse with the same master data
    and a registry of its own (no champion yet, as on a first night): the last night's summary, and what the
    commands printed."""
    postgres = make_database(DATABASE)
    expected = _night_on_postgres(postgres, tmp_path_factory.mktemp("postgres-night"))
    local = tmp_path_factory.mktemp("spark-night")
    env = {**os.environ, "PGDATABASE": DATABASE, "CUSTLABEL_LOCAL_DIR": str(local),
           "MLFLOW_TRACKING_URI": f"sqlite:///{local / 'mlflow.db'}", "PREFECT_HOME": str(local / "prefect")}
    world = ["--customers", str(WORLD["customers"]), "--days", str(WORLD["days"]), "--seed", str(WORLD["seed"]),
             "--end-date", str(WORLD["end_date"])]
    commands = [_custlabel(["demo-data", "--target", "spark", *world], env)]
    for as_of_date in NIGHTS:
        commands.append(_custlabel(["nightly", "--target", "spark", "--as-of", str(as_of_date),
                                    "--vars", json.dumps(VARS)], env))
    with pytest.MonkeyPatch.context() as patch:
        for name in ("PGDATABASE", "CUSTLABEL_LOCAL_DIR", "MLFLOW_TRACKING_URI"):
            patch.setenv(name, env[name])
        spark = spark_session.local_session(get_settings())
    console = "".join(command.stdout + command.stderr for command in commands)
    yield Nights(spark, commands[-1].stdout, expected, postgres, console)
    spark.stop()


def _published(spark, table: str) -> pd.DataFrame:
    return spark.sql(f"select * from {schema_for('spark')}.{table} order by customer_id").toPandas()


def _spark_rows(spark, query: str) -> pd.DataFrame:
    return spark.sql(query).toArrow().to_pandas()


def test_the_night_on_spark_labels_as_postgres_does(nights) -> None:
    spark, _, postgres, _, _ = nights
    expected = postgres["labels"]
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
    spark, summary, postgres, _, _ = nights
    expected = postgres["labels"]
    history = _published(spark, "customer_label_history")
    assert set(history["as_of_date"]) == set(NIGHTS) and (history["as_of_date"] == NIGHT).sum() == len(expected)
    lines = summary.splitlines()
    assert lines[0].startswith(f"night {NIGHT} on Spark: {len(expected):,} customers labelled by rule-baseline")
    assert lines[1].startswith("  source freshness: 2 sources judged")
    assert "on the spark target" in lines[2]
    assert "in analytics_spark.customer_labels" in lines[3]


def test_the_operator_sees_custlabels_lines_and_none_of_sparks_warnings(nights) -> None:
    """What the operator of `make demo-spark` sees: none of Spark's JVM warnings (its log4j2 configuration,
    custlabel/warehouse/spark_log4j2.properties, which the profile sets)."""
    assert "demo master data on Spark:" in nights.console and f"night {NIGHT} on Spark:" in nights.console
    assert not SPARK_NOISE.findall(nights.console), "\n".join(
        line for line in nights.console.splitlines() if SPARK_NOISE.search(line)
    )


def test_the_spark_nights_are_recorded_and_summarized_as_postgres_nights_are(nights) -> None:
    spark, summary, postgres, _, _ = nights
    settings = get_settings({**os.environ, "PGDATABASE": DATABASE})
    runs = pipeline_runs.recent(settings, schema_for("spark"))
    assert [(run["as_of_date"], run["outcome"], run["model_name"]) for run in runs] == [
        (night, "succeeded", "rule-baseline") for night in reversed(NIGHTS)]
    assert runs[0]["rows_labelled"] == len(postgres["labels"])
    steps = db.read_frame(settings, f"select steps from {schema_for('spark')}.pipeline_runs where as_of_date = '{NIGHT}'")
    # No champion yet: the bootstrap trigger trains, as on Postgres; at 300 customers nothing reaches validation.
    assert [step["name"] for step in steps["steps"][0]] == [
        "source freshness", "dbt build", "monitoring", "release", "score and publish", "monitoring refresh",
        "monitoring report", "triggers", "train", "release state", "release log on Spark"]
    lines = summary.splitlines()
    assert lines[4].startswith("steps: source freshness ")
    assert "release: champion none (the rule baseline labels); canary none" in lines
    assert any(line.startswith(f"labels: {len(postgres['labels']):,} customers by rule-baseline")
               and line.endswith("(champion, spark engine)") for line in lines)
    assert spark.catalog.tableExists(f"{schema_for('spark')}.model_releases")


def test_the_monitoring_marts_on_spark_equal_postgres(nights) -> None:
    spark, _, postgres, _, _ = nights
    for mart, keys in MARTS.items():
        expected = postgres[mart].drop(columns=["scored_at"], errors="ignore")
        built = _spark_rows(spark, f"select * from analytics_spark_monitoring.{mart}").drop(columns=["scored_at"], errors="ignore")
        assert set(expected["as_of_date"]) == set(NIGHTS), mart
        assert_same_rows(built, expected, keys)
    assert postgres["score_drift"]["score_psi"].max() > 0, "tonight's scores drifted from the reference night's"


def test_the_shipped_alert_rules_fire_on_spark_as_on_postgres(nights) -> None:
    spark, summary, postgres, _, _ = nights
    alerts = _spark_rows(spark, "select as_of_date, rule, state, value, breaches from analytics_spark_monitoring.alerts")
    assert_same_rows(alerts, postgres["alerts"], ["as_of_date", "rule"])
    firing = set(alerts.loc[(alerts["state"] == "firing") & (alerts["as_of_date"] == NIGHT), "rule"])
    assert "stale_source" in firing
    assert any(line.startswith("ALERT: stale_source firing") for line in summary.splitlines())


def test_the_report_is_written_from_the_marts_on_spark(nights) -> None:
    _, summary, _, _, _ = nights
    report = Path(next(line for line in summary.splitlines() if line.startswith("report: ")).removeprefix("report: "))
    page = report.read_text()
    assert report.name == f"monitoring-analytics_spark-{NIGHT}.html"
    assert "analytics_spark_monitoring" in page and "stale_source" in page and page.count("<svg") >= 9


def test_the_quarantine_and_its_tests_run_on_spark(nights) -> None:
    spark, _, postgres, _, _ = nights
    quarantine = _spark_rows(spark, "select source_table, record_id, reason from analytics_spark.master_data_quarantine")
    assert len(quarantine) > 0
    assert_same_rows(quarantine, postgres["quarantine"], ["source_table", "record_id", "reason"])
    ported = _spark_rows(spark, "select distinct test_name, status from analytics_spark_monitoring.dbt_test_results"
                                f" where {PORTED_TESTS}")
    assert ported["test_name"].nunique() == 3
    assert_same_rows(ported, postgres["ported_tests"], ["test_name", "status"])


@pytest.mark.parametrize("as_of_date", NIGHTS)
def test_compare_engines_finds_each_night_within_the_bars(nights, capsys, as_of_date: date) -> None:
    _, _, _, postgres, _ = nights
    assert cli.main(["compare-engines", "--as-of", str(as_of_date), "--postgres-database", postgres.connection.dbname]) == 0
    printed = capsys.readouterr().out
    assert f"night {as_of_date}, Spark against Postgres:" in printed and "agree: every bar met" in printed


def test_compare_engines_names_the_bars_a_perturbed_night_fails(nights) -> None:
    spark, _, _, postgres, _ = nights
    spark_night = engine_agreement.read_spark(spark, NIGHT)
    labels = spark_night.labels.copy()
    labels.loc[: len(labels) // 100, "label"] = labels["label"].map({"good": "bad", "bad": "good"})
    labels.loc[len(labels) - 1, "score"] += 1e-5
    agreement = engine_agreement.compare(
        NIGHT, engine_agreement.read_postgres(postgres, NIGHT), engine_agreement.EngineNight(spark_night.features, labels)
    )
    failures = agreement.failures()
    assert [failure.split(":")[0] for failure in failures] == ["labels", "scores"], failures
    assert agreement.customers_in_both == len(labels) and agreement.feature_difference <= engine_agreement.FEATURE_BAR
