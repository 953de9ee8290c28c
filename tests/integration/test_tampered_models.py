"""A registered version whose files changed in the MLflow store is refused at every load site, recorded, and replaced.

Sites: the smoke test (validation's first gate), validation, the computational gate's
child process, nightly scoring (and with it SQL compilation), the canary. The store is a
real MLflow registry on disk; the tampering is done to the files there.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from custlabel.config import Settings, get_settings
from custlabel.errors import CustlabelError
from custlabel.nightly import night_steps
from custlabel.release import (
    approval,
    computational_validation,
    lifecycle,
    registration,
    release_log,
    smoke,
    validate_version,
)
from custlabel.scoring import score
from custlabel.training import model_search, registry, rule_baseline
from custlabel.warehouse import db
from helpers.demo_warehouse import DEMO_END_DATE
from helpers.release_path import approve_and_promote, record_validation
from helpers.stores import new_release_log

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAST = model_search.TrainConfig(search_iterations=1, max_folds=2, n_jobs=1, candidates=("logistic_regression",))
SCHEMA = "analytics"


class _WritesMarker:
    """Unpickling it runs code: it creates the marker file named in its argument."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def store(built_warehouse: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Three versions in a store of their own: v1 champion, v2 canary, v3 registered; the environment points at the store."""
    folder = tmp_path_factory.mktemp("tampered")
    env = {"CUSTLABEL_LOCAL_DIR": str(folder / "local")}
    settings = get_settings({**os.environ, **env})
    new_release_log(settings)
    first = registration.train_and_register(settings, FAST).version
    second = registration.train_and_register(settings, replace(FAST, random_state=1)).version
    registration.train_and_register(settings, replace(FAST, random_state=2))  # v3: registered, for validation
    approve_and_promote(settings, first)
    record_validation(settings, second)
    approval.approve(settings, second, "alice", "validation report reviewed")
    lifecycle.start_canary(settings, second, "test", None)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield settings


def model_folder(settings: Settings, version: str) -> Path:
    uri = MlflowClient(settings.mlflow_tracking_uri).get_model_version_download_uri(settings.model_name, version)
    return Path(uri.removeprefix("file://"))


@contextmanager
def tampered(settings: Settings, version: str, change: str, marker: Path | None = None) -> Iterator[None]:
    """A version's files changed in the store for the block: `mlmodel` (switched to cloudpickle) or `added` (a new file)."""
    folder = model_folder(settings, version)
    mlmodel = folder / "MLmodel"
    original = mlmodel.read_text()
    added = folder / ("model.pkl" if change == "mlmodel" else "code/sitecustomize.py")
    if change == "mlmodel":
        spec = yaml.safe_load(original)
        spec["flavors"]["sklearn"].update(pickled_model="model.pkl", serialization_format="cloudpickle")
        spec["flavors"]["python_function"]["model_path"] = "model.pkl"
        mlmodel.write_text(yaml.safe_dump(spec))
        added.write_bytes(pickle.dumps(_WritesMarker(marker)))
    else:
        added.parent.mkdir(exist_ok=True)
        added.write_text("raise SystemExit('loaded a file the registration never saw')\n")
    try:
        yield
    finally:
        mlmodel.write_text(original)
        added.unlink()


def release_events(settings: Settings, event: str, since: int) -> list[release_log.RecordedEvent]:
    return [e for e in release_log.history(settings) if e.event == event and e.event_id > since]


def last_event_id(settings: Settings) -> int:
    return max((e.event_id for e in release_log.history(settings)), default=0)


def test_smoke_refuses_a_version_switched_to_cloudpickle_before_unpickling_it(store: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    with tampered(store, "1", "mlmodel", marker):
        result = smoke.check(store, "1", SCHEMA)
    assert not marker.exists(), "the tampered model's pickle was deserialized"
    assert not result.passed
    assert "models:/customer-labels/1 refused: customer-labels version 1: model file MLmodel changed since registration" in result.reason
    assert smoke.check(store, "1", SCHEMA).passed


def test_validation_records_the_refusal(store: Settings, tmp_path: Path) -> None:
    test = replace(store, target="test")
    with db.connect(test) as conn:
        # An earlier validation in this session's server may have built the test environment: use it as it is.
        (built,) = conn.execute("select to_regclass('analytics_test.customer_features_current') is not null").fetchone()
        if not built:
            conn.execute("create schema if not exists analytics_test")
            conn.execute("create view analytics_test.customer_features_current as"
                         " select * from analytics.customer_features_current")
    since = last_event_id(store)
    try:
        with tampered(store, "3", "added"):
            done = validate_version.validate(store, "3", build_warehouse=False)
    finally:
        if not built:
            with db.connect(test) as conn:
                conn.execute("drop view analytics_test.customer_features_current")
    assert not done.passed and [gate.name for gate in done.gates] == ["smoke"]
    [failed] = [e for e in release_events(store, "validation_failed", since) if e.model_version == "3"]
    assert "files not recorded at registration were added to the registry store (code/sitecustomize.py)" in failed.reason


def test_the_computational_child_refuses_a_tampered_version(store: Settings) -> None:
    skops = next(model_folder(store, "2").rglob("model.skops"))
    original = skops.read_bytes()
    skops.write_bytes(original + b"\x00")
    try:
        with pytest.raises(CustlabelError, match="model file model.skops changed since registration"):
            computational_validation.score_in_child(store, SCHEMA, date.fromisoformat(DEMO_END_DATE), "2")
    finally:
        skops.write_bytes(original)


def tonight() -> night_steps.Night:
    return night_steps.Night(date.fromisoformat(DEMO_END_DATE), "prod", run_name="tamper-test")


def test_nightly_scoring_falls_back_to_the_rule_and_records_why(store: Settings) -> None:
    since = last_event_id(store)
    with tampered(store, "1", "added"):
        published = night_steps.score_and_publish(tonight())
    assert published.champion.startswith(rule_baseline.MODEL_NAME)
    assert "champion v1 cannot be loaded (ArtifactTamperedError" in published.fallback
    [fallback] = release_events(store, "fallback", since)
    assert "code/sitecustomize.py" in fallback.reason and "refusing to load it" in fallback.reason
    assert {part.model_name for part in published.labels.slices} == {rule_baseline.MODEL_NAME}


def test_the_sql_engine_never_compiles_a_tampered_version(store: Settings) -> None:
    with tampered(store, "1", "added"), pytest.raises(registry.ArtifactTamperedError, match="refusing to load it"):
        score.score(store, score.ScoreRequest(SCHEMA, engine="sql", force=True))
    assert "sql_parity" not in registry.get_version(store, "1").tags


def test_a_tampered_canary_is_rolled_back_and_the_champion_labels_everyone(store: Settings) -> None:
    since = last_event_id(store)
    with tampered(store, "2", "added"):
        published = night_steps.score_and_publish(tonight())
    assert published.champion == "customer-labels v1" and published.canary_version is None
    [rolled_back] = [e for e in release_events(store, "rolled_back", since) if e.model_version == "2"]
    assert rolled_back.reason.startswith("canary refused: customer-labels version 2: files not recorded")
    assert "canary" not in registry.alias_versions(store)


def test_a_retried_scoring_step_records_its_fallback_once(store: Settings) -> None:
    retried = night_steps.Night(date.fromisoformat(DEMO_END_DATE), "prod", run_id="retried-run-1", run_name="retried")
    with tampered(store, "1", "added"), night_steps.one_run_at_a_time(retried):
        first = night_steps.score_and_publish(retried)
        again = night_steps.score_and_publish(retried)  # what Prefect does when the step is retried
    assert first.fallback == again.fallback
    # Once for the night: an earlier run of the same night may have recorded it already.
    recorded = [e for e in release_log.history(store) if e.event == "fallback" and e.as_of_date == retried.as_of_date
                and e.reason == first.fallback]
    assert len(recorded) == 1
