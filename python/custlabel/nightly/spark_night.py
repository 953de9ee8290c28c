"""A night on Spark (`custlabel nightly --target spark`): the steps of the nightly flow that run on the engine.

The night's freshness, the dbt build of the `spark` target, and tonight's labels by the
champion (the rule baseline until a version is approved), published on Spark under the
write-back's checks. The registry stays where it is (MLflow): a version is the same model
whichever engine labels with it. Not on Spark yet: the canary slice, the monitoring marts,
triggers and training (docs/scale.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from custlabel.config import Settings, schema_for
from custlabel.nightly.night_steps import last_complete_night
from custlabel.scoring import on_spark, score, writeback
from custlabel.training.deployed_model import CHAMPION
from custlabel.warehouse import dbt_runner, freshness, spark_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TARGET = "spark"
# What builds on Spark so far (docs/scale.md): the features and the rule baseline, without dbt's data tests.
BUILD = ["build", "--select", "+customer_features", "rule_baseline_scores",
         "--resource-type", "model", "--resource-type", "snapshot"]


@dataclass(frozen=True)
class SparkNight:
    """What a night on Spark did, for its summary."""

    night: date
    sources: int
    warnings: list[str]
    dbt_nodes: int
    labeller: str
    checked: writeback.CheckResult
    seconds: float

    def lines(self) -> list[str]:
        previous = (
            f", {self.checked.previous_bad_rate:.1%} on {self.checked.previous_as_of_date}"
            if self.checked.previous_bad_rate is not None else ""
        )
        return [
            f"night {self.night} on Spark: {self.checked.rows:,} customers labelled by {self.labeller}"
            f" in {self.seconds:.0f} s",
            f"  freshness: {self.sources} sources judged" + "".join(f"; {w}" for w in self.warnings),
            f"  dbt build: {self.dbt_nodes} nodes on the {TARGET} target",
            f"  published: {schema_for(TARGET)}.{writeback.LABELS} ({self.checked.bad_rate:.1%} bad{previous})",
        ]


def run(settings: Settings, as_of_date: date | None = None, dbt_vars: dict[str, Any] | None = None) -> SparkNight:
    """Judge the sources, build the night on Spark, label its customers and publish them there."""
    started = time.perf_counter()
    settings = replace(settings, target=TARGET)
    night = as_of_date or last_complete_night(settings.timezone)
    spark = spark_session.local_session(settings)
    checked = freshness.check(settings, night, dbt_vars, loads=on_spark.newest_loads(spark))
    built = dbt_runner.run(settings, BUILD, target=TARGET, as_of_date=night, extra_vars=dbt_vars)
    labeller, result = label_and_publish(settings, spark, night)
    return SparkNight(night, checked.sources, checked.warnings, built.nodes, labeller, result,
                      time.perf_counter() - started)


def label_and_publish(settings: Settings, spark: SparkSession, night: date) -> tuple[str, writeback.CheckResult]:
    """Label the night's customers on Spark by the champion, else the rule baseline, and publish them there."""
    database = schema_for(TARGET)
    features = spark.table(f"{database}.customer_features").where(f"as_of_date = date'{night}'")
    eligible = on_spark.eligible(features, night)
    models = score.RegisteredModels(settings)
    champion = models.model(CHAMPION)
    if champion is None:
        labeller = models.rule()
        labels = on_spark.rule_labels(spark, database, labeller, features)
    else:
        labeller = champion
        labels = on_spark.label_night(features, champion, on_spark.explainer_for(champion, features))
    result = on_spark.publish_night(
        spark, database, labels, night, eligible.rows, max_bad_share=score.acceptance_bound(settings)
    )
    return f"{labeller.name} v{labeller.version}", result
