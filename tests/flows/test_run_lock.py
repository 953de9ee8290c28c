"""One nightly run at a time per target: the Postgres advisory lock on its own."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from custlabel.warehouse import locking

pytestmark = pytest.mark.integration

HOLD_IN_CHILD = """
import sys, time
from custlabel.warehouse import locking
from custlabel.config import get_settings
with locking.hold(get_settings(), "analytics_dev", owner="child"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_run_of_the_same_target_stops_and_names_the_first(warehouse_settings):
    with locking.hold(warehouse_settings, "analytics", owner="swift-heron 1234"):
        with pytest.raises(locking.RunLockedError) as raised:
            with locking.hold(warehouse_settings, "analytics", owner="late-owl 5678"):
                pass
    message = str(raised.value)
    assert message.startswith("another nightly run for analytics is in progress: custlabel nightly swift-heron 1234")
    assert "this run stops without touching anything" in message


def test_other_targets_run_side_by_side(warehouse_settings):
    with locking.hold(warehouse_settings, "analytics", owner="prod run"):
        with locking.hold(warehouse_settings, "analytics_test", owner="test run"):
            pass


def test_a_waiting_run_starts_when_the_first_ends(warehouse_settings):
    release = threading.Event()

    def first():
        with locking.hold(warehouse_settings, "analytics", owner="first"):
            release.wait(10)

    holder = threading.Thread(target=first)
    holder.start()
    time.sleep(0.5)
    threading.Timer(1.0, release.set).start()
    started = time.monotonic()
    with locking.hold(warehouse_settings, "analytics", owner="second", wait_seconds=30, poll_seconds=0.2):
        waited = time.monotonic() - started
    holder.join()
    assert 0.3 < waited < 10


def test_a_killed_run_leaves_no_stale_lock(warehouse_settings):
    child = subprocess.Popen([sys.executable, "-c", HOLD_IN_CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(locking.RunLockedError):
            with locking.hold(warehouse_settings, "analytics_dev", owner="while the child holds it"):
                pass
    finally:
        child.kill()
        child.wait()
    with locking.hold(warehouse_settings, "analytics_dev", owner="after the kill", wait_seconds=10, poll_seconds=0.2):
        pass


def _drop_lock_session(settings, owner: str) -> None:
    """Drop a run's lock session the way a network cut or an administrator would."""
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as admin:
        terminated = admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where application_name = %s",
            [f"{locking.APPLICATION_PREFIX} {owner}"],
        ).fetchall()
    assert terminated == [(True,)]


def test_a_run_that_succeeded_does_not_fail_when_its_lock_session_dropped(warehouse_settings, caplog):
    settings = dataclasses.replace(warehouse_settings, lock_heartbeat_seconds=3600)
    with locking.hold(settings, "analytics", owner="dropped"):
        _drop_lock_session(settings, "dropped")
    assert "dropped before the unlock" in caplog.text
    with locking.hold(settings, "analytics", owner="next night"):
        pass


def test_a_failing_run_keeps_its_own_error_when_its_lock_session_dropped(warehouse_settings):
    settings = dataclasses.replace(warehouse_settings, lock_heartbeat_seconds=3600)
    with pytest.raises(ZeroDivisionError):
        with locking.hold(settings, "analytics", owner="dropped"):
            _drop_lock_session(settings, "dropped")
            1 / 0


def test_the_heartbeat_takes_the_lock_again_after_a_drop(warehouse_settings, caplog):
    settings = dataclasses.replace(warehouse_settings, lock_heartbeat_seconds=0.2)
    with locking.hold(settings, "analytics", owner="swift-heron 1234") as lock:
        _drop_lock_session(settings, "swift-heron 1234")
        time.sleep(1.5)
        with pytest.raises(locking.RunLockedError, match="in progress: custlabel nightly swift-heron 1234"):
            with locking.hold(settings, "analytics", owner="late-owl"):
                pass
        assert not lock.lost
    assert "taken again on a new session" in caplog.text


def test_a_lock_taken_by_another_run_after_a_drop_is_reported_lost(warehouse_settings, caplog):
    settings = dataclasses.replace(warehouse_settings, lock_heartbeat_seconds=1.0)
    with locking.hold(settings, "analytics", owner="first") as lock:
        _drop_lock_session(settings, "first")
        with locking.hold(settings, "analytics", owner="intruder", wait_seconds=5, poll_seconds=0.1):
            time.sleep(2.5)
            assert lock.lost
    assert "lost: custlabel nightly intruder" in caplog.text
