"""An MLflow store of a test's own over a shared warehouse: a new store starts a new release log.

The release log is the system of record of a registry's versions; tests that share the
session's warehouse but each bring an empty registry must not inherit another's history.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from psycopg import sql

from custlabel.config import TARGET_SCHEMAS, Settings
from custlabel.release import release_log
from custlabel.warehouse import db


def new_release_log(settings: Settings) -> None:
    """Start every target's release log anew, for a test that brings an empty registry."""
    with db.connect(settings) as conn:
        for schema in TARGET_SCHEMAS.values():
            conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(schema, release_log.TABLE)))


def with_store(settings: Settings, folder: Path) -> Settings:
    """The settings with an MLflow store of their own (sqlite + artifact folder) and no release history yet."""
    new_release_log(settings)
    return replace(
        settings,
        mlflow_tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        mlflow_artifact_root=folder / "artifacts",
    )


@contextmanager
def engine_home(local: Path) -> Iterator[None]:
    """The local folder and MLflow registry of one engine's night (each registry has its own version 1)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUSTLABEL_LOCAL_DIR", str(local))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{local / 'mlflow.db'}")
        yield
