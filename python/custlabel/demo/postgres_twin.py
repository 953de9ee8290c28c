"""`custlabel postgres-twin`: the Spark demo's world and night on Postgres, to compare the engines (make demo-spark).

The same demo master data (seed, size, days, end date) is written to a database of its own on the same server,
custlabel_spark_twin (make demo's database stays as it is), and the night's steps that run on Spark run there:
the dbt build, tonight's labels by the registry's champion (else the rule baseline) published, the label
monitoring and the alert rules. Training, triggers and the canary do not run: they do not run on Spark either.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from custlabel.config import Settings
from custlabel.demo import loader
from custlabel.nightly import night_steps
from custlabel.warehouse import guard

TWIN_DATABASE = "custlabel_spark_twin"


def twin_settings(settings: Settings, i_mean_database: str | None = None) -> Settings:
    """The same server and registry, the twin's database (created when missing).

    Off the embedded server, only when the operator names the twin's database (the guard).
    """
    guard.create_scratch_database(settings, i_mean_database, "create and fill the Spark demo's Postgres twin", TWIN_DATABASE)
    return dataclasses.replace(settings, connection=dataclasses.replace(settings.connection, dbname=TWIN_DATABASE))


@contextmanager
def _reaching(settings: Settings) -> Iterator[None]:
    """The environment pointed at the settings' database while the night's steps (which read it) run."""
    saved = dict(os.environ)
    os.environ.update(settings.connection.pg_env())
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run(
    settings: Settings, customers: int, days: int, seed: int, end_date: date, as_of_date: date,
    dbt_vars: dict[str, Any] | None = None, i_mean_database: str | None = None,
) -> list[str]:
    """Write the demo world to the twin and run its night there; the lines to print."""
    twin = twin_settings(settings, i_mean_database)
    written = loader.generate_and_load(
        twin, customers=customers, days=days, seed=seed, end_date=end_date, i_mean_database=TWIN_DATABASE
    )
    with _reaching(twin):
        night = night_steps.plan(as_of_date, "prod", retrain=False, dbt_vars=dbt_vars)
        built = night_steps.build(night)
        published = night_steps.score_and_publish(night)
        night_steps.refresh_label_monitoring(night)
        night_steps.evaluate_alerts(night)
    return [
        f"{written} in {TWIN_DATABASE}",
        f"night {as_of_date} on Postgres ({TWIN_DATABASE}): dbt build of {built.nodes} nodes; labelled by {published.champion}",
    ]
