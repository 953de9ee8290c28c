"""Pointing MLflow at one store leaves the process's configuration alone: the next settings read their own store."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest

from custlabel.config import get_settings
from custlabel.training import registry


def test_configuring_one_store_does_not_become_the_next_runs_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    first = get_settings({"CUSTLABEL_LOCAL_DIR": str(tmp_path / "first")})

    registry.configure(first)

    assert mlflow.get_tracking_uri() == first.mlflow_tracking_uri
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    monkeypatch.setenv("CUSTLABEL_LOCAL_DIR", str(tmp_path / "second"))
    assert get_settings().mlflow_tracking_uri == f"sqlite:///{tmp_path / 'second' / 'mlflow' / 'mlflow.db'}"


def test_an_operators_own_tracking_uri_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = f"sqlite:///{tmp_path / 'chosen.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", chosen)

    registry.point_mlflow_at(f"sqlite:///{tmp_path / 'other.db'}")

    assert os.environ["MLFLOW_TRACKING_URI"] == chosen
