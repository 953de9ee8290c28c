"""A night on Spark (the nightly flow with `--target spark`): the flow's steps that run on the engine.

The night's freshness read from Spark, the dbt build of the `spark` target, the monitoring
figures, tonight's labels by the champion (the rule baseline until a version is approved)
published on Spark under the write-back's checks, the label monitoring refreshed with the
alert rules evaluated, and the report. Then the Postgres night's own steps (night_steps), which
read the target's tables on its engine: the triggers (the marts and label history on Spark),
training (training_set's rows read from Spark) and the validation of tonight's version (its test
environment the spark_test target). The release state stays where it is (the release log and
the registry): a version is the same model whichever engine labels with it. Not on Spark yet:
the canary slice (docs/scale.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from custlabel.config import schema_for
from custlabel.monitoring import alerts, alerts_on_spark, headline_figures, nightly_report
from custlabel.monitoring import marts as monitoring_marts
from custlabel.nightly import night_steps
from custlabel.nightly.night_steps import DbtStep, Night
from custlabel.scoring import on_spark, score, writeback
from custlabel.training.deployed_model import CHAMPION
from custlabel.warehouse import dbt_test_history, freshness, spark_session

TARGET = "spark"
# The project with its data and unit tests (a failing test stops the night before its labels, as on Postgres).
BUILD = ["build"]


@dataclass(frozen=True)
class SparkLabels:
    """Tonight's labels as published on Spark."""

    labeller: str
    checked: writeback.CheckResult

    @property
    def detail(self) -> str:
        checked = self.checked
        previous = (f", {checked.previous_bad_rate:.1%} on {checked.previous_as_of_date}"
                    if checked.previous_bad_rate is not None else "")
        return (f"{checked.rows:,} customers by {self.labeller} in {schema_for(TARGET)}.{writeback.LABELS}"
                f" ({checked.bad_rate:.1%} bad{previous})")


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


def label_and_publish(night: Night) -> SparkLabels:
    """Label the night's customers on Spark by the champion, else the rule baseline, and publish them there."""
    settings = night.settings()
    spark = spark_session.local_session(settings)
    database = schema_for(TARGET)
    features = spark.table(f"{database}.customer_features").where(f"as_of_date = date'{night.as_of_date}'")
    eligible = on_spark.eligible(features, night.as_of_date)
    models = score.RegisteredModels(settings)
    champion = models.model(CHAMPION)
    if champion is None:
        labeller = models.rule()
        labels = on_spark.rule_labels(spark, database, labeller, features)
    else:
        labeller = champion
        labels = on_spark.label_night(features, champion, on_spark.explainer_for(champion, features))
    checked = on_spark.publish_night(
        spark, database, labels, night.as_of_date, eligible.rows, max_bad_share=score.acceptance_bound(settings)
    )
    return SparkLabels(labeller.label, checked)


def summary_lines(
    night: Night, sources: DbtStep, built: DbtStep, labels: SparkLabels,
    headline: headline_figures.Headline | None = None, failures: list[str] | None = None,
    retraining: list[str] | None = None,
) -> list[str]:
    """What the run's summary says of a night on Spark: its steps, the release state, triggers, training and
    validation (as on Postgres, night_steps.retraining_lines), then the monitoring headline."""
    lines = [
        f"night {night.as_of_date} on Spark: {labels.checked.rows:,} customers labelled by {labels.labeller}",
        f"  source freshness: {sources.nodes} sources judged" + "".join(f"; {w}" for w in sources.warnings),
        f"  dbt build: {built.detail} on the {TARGET} target",
        f"  score and publish: {labels.detail}",
        *(f"  FAILED: {failure}" for failure in failures or []),
        *(retraining or []),
    ]
    return lines + ([] if headline is None else headline.lines())
