"""A night on Spark (the nightly flow with `--target spark`): the flow's steps that run on the engine.

The night's freshness read from Spark, the dbt build of the `spark` target, the monitoring
figures, tonight's labels by the release's lineup (the champion, or the rule baseline until a
version is promoted, and an approved canary on its slice) published on Spark under the
write-back's checks, the canary checks read from Spark, the label monitoring refreshed with the
alert rules evaluated, and the report. Then the Postgres night's own steps (night_steps), which
read the target's tables on its engine: the triggers (the marts and label history on Spark),
training (training_set's rows read from Spark) and the validation of tonight's version (its test
environment the spark_test target). The release state stays in the control plane (the release
log in Postgres, the registry in MLflow), copied to Spark for BI: a version is the same model
whichever engine labels with it (docs/scale.md).
"""

from __future__ import annotations

import time
from pathlib import Path

from custlabel.config import schema_for
from custlabel.monitoring import (
    alerts,
    alerts_on_spark,
    drift_reference_on_spark,
    headline_figures,
    nightly_report,
    pipeline_runs,
)
from custlabel.monitoring import marts as monitoring_marts
from custlabel.nightly import night_steps
from custlabel.nightly.night_steps import CanaryVerdict, DbtStep, Night, Published
from custlabel.release import canary_health, canary_on_spark, release_log_on_spark, rollout
from custlabel.scoring import on_spark, score, writeback
from custlabel.training.deployed_model import DeployedModel
from custlabel.warehouse import dbt_test_history, freshness, locking, spark_session

TARGET = "spark"
# The project with its data tests (a failing test stops the night before its labels, as on Postgres); unit tests
# run in the test environment's build, as on Postgres.
BUILD = ["build"]


def check_sources(night: Night) -> DbtStep:
    """The night's freshness, judged as on Postgres from the master data's newest loads on Spark."""
    settings = night.settings()
    spark = spark_session.local_session(settings)
    checked = freshness.check(settings, night.as_of_date, night.dbt_vars, loads=on_spark.newest_loads(spark))
    return DbtStep("source freshness", checked.sources, checked.warnings)


def _store_on_spark(night: Night, results: dbt_test_history.RunResults) -> None:
    spark = spark_session.local_session(night.settings())
    dbt_test_history.store_on_spark(spark, schema_for(TARGET), night.run_id, night.as_of_date, results)


def build(night: Night) -> DbtStep:
    """The night's dbt build on the spark target, its test results kept on Spark."""
    return night_steps.build_keeping_results(night, BUILD, store=_store_on_spark)


def _marts(night: Night) -> monitoring_marts.SparkMarts:
    return monitoring_marts.on_spark(spark_session.local_session(night.settings()), schema_for(TARGET))


def read_monitoring(night: Night) -> headline_figures.Headline:
    """The monitoring marts' figures for the night on Spark, with alerts against the acceptance floors."""
    return headline_figures.read_marts(_marts(night), night.as_of_date, night_steps.monitoring_criteria(night))


def refresh_monitoring(night: Night) -> headline_figures.Headline:
    """Rebuild the marts that read the label history on Spark, evaluate the alert rules there, read the figures."""
    night_steps.build_keeping_results(night, ["build", "--select", night_steps.LABEL_MONITORING], store=_store_on_spark)
    settings = night.settings()
    spark = spark_session.local_session(settings)
    alerts_on_spark.evaluate(spark, schema_for(TARGET), night.as_of_date, alerts.load(settings), run_id=night.run_id)
    return read_monitoring(night)


def write_report(night: Night, headline: headline_figures.Headline | None) -> Path:
    """The night's HTML monitoring report from the marts on Spark, under .local/reports/."""
    lines = [] if headline is None else headline.lines()
    return nightly_report.write(night.settings(), schema_for(TARGET), night.as_of_date, lines, marts=_marts(night))


class OnSpark:
    """The night's labels on Spark: published there (on_spark), read back there by the canary checks."""

    def publish(self, night: Night, lineup: rollout.Lineup, percent: float, waive: bool) -> score.ScoreSummary:
        settings, database = night.settings(), schema_for(TARGET)
        spark = spark_session.local_session(settings)
        started = time.perf_counter()
        features = canary_on_spark.night_features(spark, database, night.as_of_date)
        eligible = on_spark.eligible(features, night.as_of_date)
        labels, slices = on_spark.label_slices(
            spark, database, features, lineup.champion, lineup.canary, percent if lineup.canary else 0.0
        )
        for model in (lineup.champion, lineup.canary):
            if model is not None and not model.is_rule:  # its drift reference, where the drift marts read it
                drift_reference_on_spark.copy_to_spark(spark, database, settings, database, model.name, model.version)
        locking.check_held()  # a nightly run that lost its lock never publishes
        checked = on_spark.publish_night(spark, database, labels, night.as_of_date, eligible.rows,
                                         max_bad_share=score.acceptance_bound(settings), force=waive)
        return score.ScoreSummary(database, night.as_of_date, checked.rows, checked.bad_rate, slices,
                                  time.perf_counter() - started)

    def last_night_model(self, night: Night) -> tuple[str, str] | None:
        spark, database = spark_session.local_session(night.settings()), schema_for(TARGET)
        if not spark.catalog.tableExists(f"{database}.{writeback.LABELS}"):
            return None
        row = spark.sql(f"select model_name, model_version from `{database}`.`{writeback.LABELS}`"
                        " group by 1, 2 order by count(*) desc limit 1").first()
        return None if row is None else (row[0], row[1])

    def grant_readers(self, night: Night) -> None:
        """Nothing to grant: who reads a Spark database is the cluster's (or Unity Catalog's) to say."""

    def canary_night(self, night: Night, canary_model: DeployedModel, champion: DeployedModel, percent: float,
                     seconds: float) -> canary_health.SliceNight:
        settings = night.settings()
        return canary_on_spark.read_night(spark_session.local_session(settings), settings, schema_for(TARGET),
                                          night.as_of_date, canary_model, champion, percent, seconds)

    def canary_realized(self, night: Night, canary_model: DeployedModel) -> canary_health.Realized | None:
        return canary_on_spark.read_realized(spark_session.local_session(night.settings()), schema_for(TARGET),
                                             canary_model)


ON_SPARK = OnSpark()


def score_and_publish(night: Night) -> Published:
    """Label the night's customers on Spark by tonight's lineup (night_steps.score_and_publish) and publish them there."""
    return night_steps.score_and_publish(night, ON_SPARK)


def check_canary(night: Night, published: Published) -> CanaryVerdict:
    """Tonight's canary checks on the labels published on Spark (night_steps.check_canary); a failed one is
    rolled back and the champion's labels republished on Spark."""
    return night_steps.check_canary(night, published, ON_SPARK)


def publish_release_log(night: Night) -> int:
    """Append the release events of the target that its copy on Spark lacks (BI reads it there)."""
    settings = night.settings()
    return release_log_on_spark.publish(spark_session.local_session(settings), settings, schema_for(TARGET))


def summary(
    night: Night, run: pipeline_runs.RunRecord, sources: DbtStep, built: DbtStep, published: Published,
    headline: headline_figures.Headline | None = None, verdict: CanaryVerdict | None = None,
    state: rollout.ReleaseState | None = None, found: night_steps.TriggerReport | None = None,
    trained: night_steps.TrainOutcome | None = None, validated: night_steps.ValidationOutcome | None = None,
) -> night_steps.Summary:
    """What the run's summary says of a night on Spark: its steps on the engine, then what a night's summary says
    on Postgres (steps and their times, the release state, the canary, triggers, training and validation, the
    labels by slice, the monitoring headline)."""
    shared = night_steps.summarize(night, run, headline, published, trained, verdict, found, state, validated)
    labels = published.labels
    lines = [
        f"night {night.as_of_date} on Spark: {labels.customers:,} customers labelled by {published.champion}",
        f"  source freshness: {sources.nodes} sources judged" + "".join(f"; {w}" for w in sources.warnings),
        f"  dbt build: {built.detail} on the {TARGET} target",
        f"  score and publish: {published.detail} in {labels.schema}.{writeback.LABELS} ({labels.bad_rate:.1%} bad)",
        *(f"  FAILED: {failure}" for failure in run.failures),
        *shared.lines[1:],
    ]
    return night_steps.Summary(lines, shared.data)
