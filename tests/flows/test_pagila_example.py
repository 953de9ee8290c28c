"""The worked example end to end: pagila loaded into its own schema, mapped by views, one night labelled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from custlabel.config import Settings, get_settings
from custlabel.demo import pagila
from custlabel.errors import CustlabelError
from custlabel.nightly import serving
from custlabel.release import approval
from custlabel.training import model_families, registry
from custlabel.warehouse import db

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def register_approved_model_of_other_data(settings: Settings) -> str:
    """An approved version of the default model name, as `make demo` leaves in the same MLflow store."""
    rows = np.random.default_rng(0).uniform(0, 400, size=(200, 2))
    sample = pd.DataFrame(rows, columns=["tenure_days", "days_since_last_sale"])
    model = LogisticRegression().fit(sample, (sample["days_since_last_sale"] > 200).astype(int))
    with registry.training_run(settings, "the demo's model", {"kind": "test"}):
        version = registry.register_model(settings, model, sample, 0.5, model_families.trusted_types())
    registry.tag_version(settings, version, {
        approval.APPROVAL_STATUS_TAG: approval.APPROVED, approval.APPROVED_BY_TAG: "test",
        approval.APPROVED_AT_TAG: "2026-12-01T00:00:00+00:00",
    })
    return version


@pytest.fixture(scope="module")
def pagila_settings(make_database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A database of its own, with os.environ pointing at it for the module (the flow reads it)."""
    database = make_database("pagila_example")
    local = tmp_path_factory.mktemp("pagila-local")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGDATABASE", database.connection.dbname)
        patch.setenv("CUSTLABEL_LOCAL_DIR", str(local))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{local / 'mlflow.db'}")
        patch.setenv("CUSTLABEL_TARGET", "prod")
        yield get_settings()


@pytest.fixture(scope="module")
def dataset(pagila_settings: Settings) -> Path:
    return pagila.default_dataset_dir(pagila_settings)


@pytest.fixture(scope="module")
def summary(pagila_settings: Settings, dataset: Path) -> str:
    from prefect.testing.utilities import prefect_test_harness

    register_approved_model_of_other_data(pagila_settings)
    with serving.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
        return pagila.run(pagila_settings, dataset, i_mean_database=pagila_settings.connection.dbname)


def _rows(settings: Settings, query: str) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute(query).fetchall()


def test_every_pagila_customer_is_labelled_by_the_rule_baseline_on_night_one(pagila_settings: Settings, summary: str) -> None:
    # the approved model of other master data in the same registry is not pagila's: no canary of it
    labels = _rows(pagila_settings, "select model_name, as_of_date::text, count(*) from analytics.customer_labels group by 1, 2")
    assert labels == [("rule-baseline", "2005-08-23", 599)]
    assert "labels: 599 customers as of 2005-08-23" in summary
    assert "training: no model yet (training_set has 3 matured as_of_dates" in summary


def test_the_example_vars_reach_every_dbt_step(pagila_settings: Settings, summary: str) -> None:
    windows = _rows(pagila_settings, "select distinct window_end - as_of_date from analytics.customer_outcomes")
    assert windows == [(14,)]
    (steps,) = _rows(pagila_settings, "select steps from analytics.pipeline_runs order by started_at desc limit 1")[0]
    freshness = next(step for step in steps if step["name"] == "source freshness")
    # The night (2005-08-23) is a replay on a newer extract: fresh by definition, both sources judged.
    assert freshness["detail"] == "2 nodes"


def test_pagila_keeps_to_schemas_of_its_own(pagila_settings: Settings, summary: str) -> None:
    assert _rows(pagila_settings, "select count(*) from pagila.customer") == [(599,)]
    assert _rows(pagila_settings, "select count(*) from information_schema.tables where table_schema = 'public'") == [(0,)]
    kinds = _rows(pagila_settings, "select relname, relkind from pg_class where relnamespace = 'master_data'::regnamespace order by 1")
    assert kinds == [("customers", "v"), ("sales", "v")]


def test_a_missing_dataset_is_named(pagila_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(CustlabelError, match=rf"pagila dataset not found: {tmp_path}/pagila-schema.sql\[\.gz\], {tmp_path}/pagila-data.sql\[\.gz\]"):
        pagila.load_dump(pagila_settings, tmp_path)
