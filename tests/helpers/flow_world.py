"""A small demo world of its own for the flow tests: a database, an MLflow store, os.environ pointing at both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest

from custlabel.config import Settings

from helpers.demo_warehouse import flow_demo


@contextmanager
def flow_world(
    make_database: Callable[..., Settings], name: str, end_date: date, local: Path
) -> Iterator[pytest.MonkeyPatch]:
    """2,000 demo customers up to end_date in database `name`; yields the patch that points the flow at it."""
    base = make_database(name, demo=flow_demo(end_date))
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in {
            "PGDATABASE": base.connection.dbname, "CUSTLABEL_LOCAL_DIR": str(local),
            "MLFLOW_TRACKING_URI": f"sqlite:///{local / 'mlflow' / 'mlflow.db'}", "CUSTLABEL_TARGET": "prod",
        }.items():
            patch.setenv(variable, value)
        yield patch
