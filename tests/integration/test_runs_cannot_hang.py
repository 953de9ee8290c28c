"""Runs that cannot hang or overlap: step and child-process timeouts, a lost lock stops the writes."""

from __future__ import annotations

import dataclasses
import time
from datetime import date

import psycopg
import pytest

from custlabel.config import Settings, StepTimeouts, get_settings
from custlabel.monitoring import pipeline_runs
from custlabel.nightly import serving
from custlabel.release import computational_validation, release_log, smoke
from custlabel.training import registry
from custlabel.warehouse import locking

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCHEMA = "analytics_locklost"


def test_every_task_of_the_flow_has_a_timeout_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect import Task

    monkeypatch.setenv("CUSTLABEL_STEP_TIMEOUT_SECONDS", "123")
    monkeypatch.setenv("CUSTLABEL_TRAIN_TIMEOUT_SECONDS", "456")
    monkeypatch.setenv("CUSTLABEL_VALIDATE_TIMEOUT_SECONDS", "789")
    flow = serving.load_flow(get_settings())
    tasks = {value.name: value.timeout_seconds for value in flow.fn.__globals__.values() if isinstance(value, Task)}
    assert len(tasks) >= 12
    assert tasks.pop("train") == 456 and tasks.pop("validate") == 789
    assert set(tasks.values()) == {123}, tasks


def test_a_smoke_test_that_does_not_finish_is_stopped(built_warehouse: Settings) -> None:
    hurried = dataclasses.replace(built_warehouse, step_timeouts=StepTimeouts(smoke_seconds=0.5))
    started = time.monotonic()
    result = smoke.check(hurried, "1", "analytics")
    assert time.monotonic() - started < 30
    assert not result.passed
    assert result.reason == (
        "models:/customer-labels/1 did not finish within 0.5 s in a fresh process (CUSTLABEL_SMOKE_TIMEOUT_SECONDS): stopped"
    )


def test_a_scoring_child_that_does_not_finish_is_stopped(built_warehouse: Settings) -> None:
    hurried = dataclasses.replace(built_warehouse, step_timeouts=StepTimeouts(scoring_child_seconds=0.5))
    with pytest.raises(Exception, match=r"scoring version 1 in analytics did not finish within 0.5 s "
                                        r"\(CUSTLABEL_SCORING_CHILD_TIMEOUT_SECONDS\): stopped"):
        computational_validation.score_in_child(hurried, "analytics", date(2026, 6, 30), "1")


def _steal_lock(settings: Settings, lock: locking.HeldLock) -> psycopg.Connection:
    """Drop the run's lock session (as a network cut would) and let another run take the lock."""
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as admin:
        admin.execute("select pg_terminate_backend(%s)", [lock.conn.info.backend_pid])
    other = psycopg.connect(settings.connection.conninfo(), autocommit=True, application_name="custlabel nightly other-run")
    assert other.execute("select pg_try_advisory_lock(hashtext(%s))", [locking.lock_key(SCHEMA)]).fetchone()[0]
    return other


def test_a_run_that_lost_its_lock_stops_before_its_next_write(warehouse_settings: Settings) -> None:
    settings = dataclasses.replace(warehouse_settings, lock_heartbeat_seconds=3600)  # the write notices first
    called = []
    with locking.hold(settings, SCHEMA, owner="run-a") as lock:
        other = _steal_lock(settings, lock)
        try:
            event = release_log.ReleaseEvent("triggered", "customer-labels", None, "run-a", "lock test")
            with pytest.raises(locking.LockLostError, match=(
                r"this run lost the nightly lock of analytics_locklost to custlabel nightly other-run \(postgres pid"
                r" \d+, .*\) and stops before its next write"
            )):
                release_log.record(settings, event)
            with pytest.raises(locking.LockLostError):
                registry.set_alias(settings, "champion", "1")
            record = pipeline_runs.RunRecord(settings, SCHEMA, "run-a", "run-a", date(2026, 6, 30), "prod", {})
            with pytest.raises(locking.LockLostError):
                record.step("score and publish", lambda **_: called.append(True))
        finally:
            other.close()
    assert called == []
    assert not [e for e in release_log.history(settings) if e.reason == "lock test"]
