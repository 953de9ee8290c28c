"""A night on Spark (the nightly flow with `--target spark`): the flow's steps that run on the engine.

The night's freshness read from Spark, the dbt build of the `spark` target, and tonight's
labels by the champion (the rule baseline until a version is approved), published on Spark
under the write-back's checks. The registry stays where it is (MLflow): a version is the same
model whichever engine labels with it. Not on Spark yet: the canary slice, the monitoring
marts, triggers and training (docs/scale.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from custlabel.config import schema_for
from custlabel.nightly.night_steps import DbtStep, Night, run_dbt
from custlabel.scoring import on_spark, score, writeback
from custlabel.training.deployed_model import CHAMPION
from custlabel.warehouse import freshness, spark_session

TARGET = "spark"
# Tests whose SQL is Postgres's alone so far (docs/scale.md).
POSTGRES_ONLY_TESTS = [
    "assert_every_source_row_is_clean_or_quarantined", "assert_quarantine_rate_within_bound",
    "test_name:recent_data_at_night",
]
# What builds on Spark so far: the features and the rule baseline, with their data and unit tests (a failing
# test stops the night before its labels, as on Postgres).
BUILD = ["build", "--select", "+customer_features", "rule_baseline_scores", "--exclude", *POSTGRES_ONLY_TESTS]


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


def build(night: Night) -> DbtStep:
    """The night's dbt build on the spark target."""
    return run_dbt(night, BUILD)


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


def summary_lines(night: Night, sources: DbtStep, built: DbtStep, labels: SparkLabels) -> list[str]:
    """What the run's summary says of a night on Spark."""
    return [
        f"night {night.as_of_date} on Spark: {labels.checked.rows:,} customers labelled by {labels.labeller}",
        f"  source freshness: {sources.nodes} sources judged" + "".join(f"; {w}" for w in sources.warnings),
        f"  dbt build: {built.detail} on the {TARGET} target",
        f"  score and publish: {labels.detail}",
    ]
