"""The MLflow artifact store's disk full during registration: the training fails cleanly, nothing is
half-registered, and the retry (same run key) registers one version."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
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
RUN_KEY = "faults-night-1"


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 KB tmpfs for the artifact store (a model does not fit), unmounted by the test or at the end."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root and mount to put the artifact store on a tiny tmpfs")
    folder = tmp_path / "artifacts"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def test_a_full_artifact_store_fails_the_training_cleanly_and_the_retry_registers_once(
    make_database, tmp_path: Path, full_disk: Path, figures
) -> None:
    settings: Settings = replace(make_database("faults_mlflow_full"), mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                                 mlflow_artifact_root=full_disk)
    training_world.create(settings, World())
    with pytest.raises(Exception) as raised:
        registration.train_and_register(settings, FAST, run_key=RUN_KEY)
    chain = [raised.value, raised.value.__cause__, raised.value.__context__]
    assert any("No space left on device" in str(error) for error in chain if error), raised.value
    assert registry.version_tags(settings) == {}
    assert [e for e in release_log.history(settings) if e.model_name == settings.model_name] == []

    subprocess.run(["umount", str(full_disk)], check=True)  # space again
    started = time.monotonic()
    first = registration.train_and_register(settings, FAST, run_key=RUN_KEY)
    retried = registration.train_and_register(settings, FAST, run_key=RUN_KEY)
    assert first.version == retried.version == "1"
    assert list(registry.version_tags(settings)) == ["1"]
    trained = [e for e in release_log.history(settings, "1", settings.model_name) if e.event == "trained"]
    figures.append(("MLflow artifact store full at registration", "failed run: versions / events; retry",
                    f"0 / 0; {len(registry.version_tags(settings))} version, {len(trained)} trained event"
                    f" ({time.monotonic() - started:.0f} s)"))
    assert len(trained) == 1
