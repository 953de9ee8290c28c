"""Postgres killed (SIGKILL) during a night's dbt build and during its swap, restarted as a supervisor would:
yesterday's labels are intact meanwhile, the run completes (its steps retried), no release event is doubled
(each night retrains, so that it records events after the crash)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta

import psycopg
import pytest

from custlabel import db, embedded_postgres, nightly, train
from custlabel.config import Settings, get_settings
from custlabel.demo import loader

from helpers.ports import free_port

# With the other tests that run a server in pytest's temporary folder: one worker, one at a time (test_suite_port.py).
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults, pytest.mark.xdist_group("own_servers")]

NIGHT = date(2026, 6, 30)
LABELS = "select count(*), md5(string_agg(customer_id || label, ',' order by customer_id)) from analytics.customer_labels"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """An embedded server of its own with demo master data, the environment pointing at it, a Prefect harness."""
    local = tmp_path_factory.mktemp("faults-killed")
    env = {"CUSTLABEL_LOCAL_DIR": str(local), "CUSTLABEL_PG_PORT": str(free_port()), "CUSTLABEL_TARGET": "prod"}
    with pytest.MonkeyPatch.context() as patch:
        for name in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGPASSFILE", "DATABASE_URL"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setattr(nightly, "TRAIN_CONFIG", train.TrainConfig(search_iterations=1, max_folds=2, n_jobs=1,
                                                                 candidates=("logistic_regression",)))
        settings = get_settings()
        embedded_postgres.start(settings)
        try:
            loader.generate_and_load(customers=2_000, days=540, seed=5, end_date=NIGHT, settings=settings)
            from prefect.testing.utilities import prefect_test_harness

            with nightly.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
                yield settings
        finally:
            embedded_postgres.stop(settings)


def _crash_and_restart(settings: Settings, when: str, seen: dict[str, object]) -> None:
    """SIGKILL the postmaster once a session matches `when`, read the labels from the restarted server."""
    deadline = time.monotonic() + 600
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute(f"select count(*) from pg_stat_activity where {when}").fetchone()[0]:
                break
            time.sleep(0.05)
        else:
            return
    os.kill(embedded_postgres.read_postmaster(settings.embedded_data_dir).pid, signal.SIGKILL)
    time.sleep(1)
    started = time.monotonic()
    embedded_postgres.start(settings)
    seen["recovered_seconds"] = time.monotonic() - started
    with db.connect(settings) as conn:
        seen["labels"] = conn.execute(LABELS).fetchone()


def _night_with_a_crash(settings: Settings, night: date, when: str, hold_labels: bool = False) -> tuple[object, dict]:
    seen: dict[str, object] = {}
    with db.connect(settings) as conn:
        seen["before"] = conn.execute(LABELS).fetchone()
    reader = None
    if hold_labels:  # a BI session in a transaction on the label table: the swap waits, and is killed waiting
        reader = psycopg.connect(settings.connection.conninfo())
        reader.execute(LABELS).fetchone()
    crasher = threading.Thread(target=_crash_and_restart, args=(settings, when, seen))
    crasher.start()
    started = time.monotonic()
    state = nightly.load_flow()(as_of_date=night, target="prod", retrain=True, return_state=True)
    seen["seconds"] = time.monotonic() - started
    crasher.join()
    if reader is not None:
        reader.close()
    return state, seen


def _events(settings: Settings) -> tuple[int, list[tuple]]:
    """How many release events there are, and those recorded twice (the same event of a version and night)."""
    with db.connect(settings) as conn:
        total = conn.execute("select count(*) from analytics.model_releases").fetchone()[0]
        return total, conn.execute(
            "select event, model_name, model_version, as_of_date, count(*) from analytics.model_releases"
            " group by 1, 2, 3, 4, details ->> 'trigger' having count(*) > 1"
        ).fetchall()


@pytest.mark.parametrize(
    ("phase", "when", "hold_labels", "night"),
    [
        ("dbt build", "application_name = 'dbt' and state = 'active'", False, NIGHT - timedelta(days=1)),
        ("the swap", "wait_event_type = 'Lock' and query ilike '%customer_labels%'", True, NIGHT),
    ],
)
def test_postgres_killed_during_a_night(server: Settings, phase: str, when: str, hold_labels: bool, night: date,
                                        figures) -> None:
    if phase == "dbt build":
        first = nightly.load_flow()(as_of_date=night - timedelta(days=1), target="prod", retrain=True, return_state=True)
        assert first.is_completed(), first.message
    state, seen = _night_with_a_crash(server, night, when, hold_labels)
    assert "labels" in seen, f"Postgres was never killed during {phase}"
    assert seen["labels"] == seen["before"]  # yesterday's labels, intact after the crash
    completed_by = "the same run (step retried)"
    if not state.is_completed():  # the run's retries ran out: the next run completes
        completed_by = "the next run"
        state = nightly.load_flow()(as_of_date=night, target="prod", retrain=True, return_state=True)
    assert state.is_completed(), state.message
    with db.connect(server) as conn:
        published = conn.execute("select count(*), min(as_of_date) from analytics.customer_labels").fetchone()
    assert published[1] == night
    events, doubled = _events(server)
    assert events > 0 and doubled == []
    figures.append((f"Postgres SIGKILL during {phase}", "recovery / night / labels / doubled events",
                    f"{seen['recovered_seconds']:.1f} s / {seen['seconds']:.0f} s / {published[0]:,} / 0 of {events},"
                    f" completed by {completed_by}"))
