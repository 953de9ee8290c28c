"""The MLflow store unreadable during registration (its artifact folder or its tracking database): the training
fails with an error naming the store, nothing is half-registered, and once the store is readable again the
retry (same run key, same process) registers one version."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from custlabel.config import Settings
from custlabel.release import registration, release_log
from custlabel.training import model_search, registry
from helpers import training_world
from helpers.training_world import World

pytestmark = [pytest.mark.integration, pytest.mark.faults]

FAST = model_search.TrainConfig(search_iterations=1, max_folds=2, n_jobs=1, candidates=("logistic_regression",))
RUN_KEY = "faults-night-unreadable"


def _make_unreadable(path: Path) -> None:
    """Put garbage where the store is: a regular file over the artifact folder, random bytes as the database."""
    if path.is_dir():
        path.rename(path.with_name(path.name + ".away"))
    path.write_bytes(os.urandom(8192))


def _make_readable(path: Path) -> None:
    """Take the garbage away: the artifact folder comes back, the database starts empty."""
    path.unlink()
    away = path.with_name(path.name + ".away")
    if away.exists():
        away.rename(path)


@pytest.mark.parametrize("store", ["artifact folder", "tracking database"])
def test_an_unreadable_store_fails_the_registration_clearly_and_the_retry_registers_once(
    make_database, tmp_path: Path, store: str, figures
) -> None:
    database = tmp_path / "mlflow.db"
    settings: Settings = replace(make_database(f"faults_mlflow_{store.split()[0]}"),
                                 mlflow_tracking_uri=f"sqlite:///{database}", mlflow_artifact_root=tmp_path / "artifacts")
    training_world.create(settings, World())
    if store == "artifact folder":
        registry.configure(settings)  # the experiment exists, its artifact folder is then replaced by a file
        broken = settings.mlflow_artifact_root
    else:
        broken = database
    _make_unreadable(broken)
    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        registration.train_and_register(settings, FAST, run_key=RUN_KEY)
    failed_after = time.monotonic() - started
    message = str(raised.value)
    assert str(broken) in message and "MLflow" in message, message
    _make_readable(broken)
    assert registry.version_tags(settings) == {}
    assert [e for e in release_log.history(settings) if e.model_name == settings.model_name] == []

    started = time.monotonic()
    first = registration.train_and_register(settings, FAST, run_key=RUN_KEY)
    retried = registration.train_and_register(settings, FAST, run_key=RUN_KEY)
    assert first.version == retried.version == "1"
    assert list(registry.version_tags(settings)) == ["1"]
    trained = [e for e in release_log.history(settings, "1", settings.model_name) if e.event == "trained"]
    figures.append((f"MLflow {store} unreadable at registration", "failed after; versions / events; retry",
                    f"{failed_after:.0f} s; 0 / 0; {len(registry.version_tags(settings))} version, {len(trained)}"
                    f" trained event ({time.monotonic() - started:.0f} s)"))
    assert len(trained) == 1
