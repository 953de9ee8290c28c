"""One nightly run at a time per target: the Postgres advisory lock on its own."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from custlabel import locking

pytestmark = pytest.mark.integration

HOLD_IN_CHILD = """
import sys, time
from custlabel import locking
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
