"""Fixtures of the flow tests: a database with small demo master data, its own MLflow store, a Prefect harness."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from custlabel.config import Settings, get_settings
from custlabel.nightly import serving
from helpers.demo_warehouse import flow_demo
from helpers.night_config import SMALL_SEARCH

DEMO_END = date(2026, 6, 30)


@pytest.fixture(scope="session")
def flow_env(make_database, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Variables that point custlabel at a database of its own with demo data ending DEMO_END."""
    settings = make_database("flows", demo=flow_demo(DEMO_END))
    local = tmp_path_factory.mktemp("flows-local")
    return {
        "PGDATABASE": settings.connection.dbname,
        "CUSTLABEL_LOCAL_DIR": str(local),
        "MLFLOW_TRACKING_URI": f"sqlite:///{local / 'mlflow' / 'mlflow.db'}",
        "CUSTLABEL_TARGET": "prod",
        **SMALL_SEARCH,
    }


@pytest.fixture(scope="module")
def flow_settings(flow_env: dict[str, str]) -> Iterator[Settings]:
    """The flow database's settings, with os.environ pointing at it for the module (the flow reads it)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in flow_env.items():
            patch.setenv(name, value)
        yield get_settings()


@pytest.fixture(scope="module")
def harness(flow_settings: Settings) -> Iterator[None]:
    """Prefect against a temporary database and API server (patient: the test machine is busy)."""
    from prefect.testing.utilities import prefect_test_harness

    with serving.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
        yield
