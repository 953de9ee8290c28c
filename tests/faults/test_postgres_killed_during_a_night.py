"""Postgres killed (SIGKILL) during a night's dbt build, its scoring and its swap, restarted as a supervisor
would: yesterday's labels are intact meanwhile, the run completes (its steps retried), the labels are written
once, no release event is doubled (each night retrains, so that it records events after the crash)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from custlabel.config import Settings, get_settings
from custlabel.demo import loader
from custlabel.nightly import serving
from custlabel.scoring import writeback
from custlabel.training import rule_baseline
from custlabel.warehouse import db, embedded_postgres
from helpers.night_config import ONE_FAMILY
from helpers.ports import free_port

# With the other tests that run a server in pytest's temporary folder: one worker, one at a time (test_suite_port.py).
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults, pytest.mark.xdist_group("own_servers")]

NIGHT = date(2026, 6, 30)
SCHEMA = "analytics"
LABELS = ("select count(*), count(distinct customer_id), max(as_of_date),"
          " md5(string_agg(customer_id || label, ',' order by customer_id)) from analytics.customer_labels")
# The scoring's insert into its staging table, waiting for the rule scores it reads.
SCORING_INSERT_WAITS = "wait_event_type = 'Lock' and query ilike 'insert into%customer_labels__staging%'"


@pytest.fixture(scope="module")
def server() -> Iterator[Settings]:
    """An embedded server of its own with demo master data, the environment pointing at it, a Prefect harness."""
    # Outside pytest's temporary root, which another pytest session makes private again (see tests/conftest.py).
    local = Path(tempfile.mkdtemp(prefix="custlabel-faults-killed-"))
    env = {"CUSTLABEL_LOCAL_DIR": str(local), "CUSTLABEL_PG_PORT": str(free_port()), "CUSTLABEL_TARGET": "prod"}
    with pytest.MonkeyPatch.context() as patch:
        for name in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGPASSFILE", "DATABASE_URL"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        for variable, value in ONE_FAMILY.items():
            patch.setenv(variable, value)
        settings = get_settings()
        embedded_postgres.start(settings)
        try:
            loader.generate_and_load(customers=2_000, days=540, seed=5, end_date=NIGHT, settings=settings)
            from prefect.testing.utilities import prefect_test_harness

            with serving.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
                yield settings
        finally:
            embedded_postgres.stop(settings)
            shutil.rmtree(local, ignore_errors=True)


def _wait_until(conn: psycopg.Connection, when: str, seconds: float = 600) -> bool:
    """Poll pg_stat_activity until a session matches `when`; False after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if conn.execute(f"select count(*) from pg_stat_activity where {when}").fetchone()[0]:
            return True
        time.sleep(0.05)
    return False


def _hold_scoring(settings: Settings) -> psycopg.Connection:
    """A session holding the scoring's advisory lock: tonight's scoring waits for it at its start."""
    holder = psycopg.connect(settings.connection.conninfo())
    holder.execute("select pg_advisory_lock(hashtext(%s))", [writeback.lock_key(SCHEMA)])
    holder.commit()
    return holder


def _let_scoring_in_until_its_insert(settings: Settings, holder: psycopg.Connection) -> bool:
    """Once the scoring waits, lock the rule scores it reads and let it in: its insert into staging then waits."""
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as conn:
        if not _wait_until(conn, "wait_event = 'advisory' and query ilike '%pg_advisory_xact_lock%'"):
            return False
    holder.execute(f"lock table {SCHEMA}.{rule_baseline.RELATION} in access exclusive mode")
    holder.execute("select pg_advisory_unlock(hashtext(%s))", [writeback.lock_key(SCHEMA)])
    return True


def _crash_and_restart(settings: Settings, when: str, seen: dict[str, object],
                       scoring_holder: psycopg.Connection | None = None) -> None:
    """SIGKILL the postmaster once a session matches `when`, read the labels from the restarted server."""
    if scoring_holder is not None and not _let_scoring_in_until_its_insert(settings, scoring_holder):
        return
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as conn:
        if not _wait_until(conn, when):
            return
    os.kill(embedded_postgres.read_postmaster(settings.embedded_data_dir).pid, signal.SIGKILL)
    time.sleep(1)
    started = time.monotonic()
    embedded_postgres.start(settings)
    seen["recovered_seconds"] = time.monotonic() - started
    with db.connect(settings) as conn:
        seen["labels"] = conn.execute(LABELS).fetchone()


def _night_with_a_crash(settings: Settings, night: date, when: str, hold: str | None) -> tuple[object, dict]:
    seen: dict[str, object] = {}
    with db.connect(settings) as conn:
        seen["before"] = conn.execute(LABELS).fetchone()
    reader = scoring_holder = None
    if hold == "labels":  # a BI session in a transaction on the label table: the swap waits, and is killed waiting
        reader = psycopg.connect(settings.connection.conninfo())
        reader.execute(LABELS).fetchone()
    if hold == "scoring":  # the scoring is held at its insert into staging, and killed there
        scoring_holder = _hold_scoring(settings)
    crasher = threading.Thread(target=_crash_and_restart, args=(settings, when, seen, scoring_holder))
    crasher.start()
    started = time.monotonic()
    state = serving.load_flow(get_settings())(as_of_date=night, target="prod", retrain=True, return_state=True)
    seen["seconds"] = time.monotonic() - started
    crasher.join()
    for session in (reader, scoring_holder):
        if session is not None:
            session.close()
    return state, seen


def _publish(settings: Settings, night: date) -> None:
    """Run `night` unless its labels are the published ones already."""
    with db.connect(settings) as conn:
        if db.relation_exists(conn, SCHEMA, writeback.LABELS) and conn.execute(LABELS).fetchone()[2] == night:
            return
    state = serving.load_flow(get_settings())(as_of_date=night, target="prod", retrain=True, return_state=True)
    assert state.is_completed(), state.message


def _events(settings: Settings) -> tuple[int, list[tuple]]:
    """How many release events there are, and those recorded twice (the same event of a version and night)."""
    with db.connect(settings) as conn:
        total = conn.execute("select count(*) from analytics.model_releases").fetchone()[0]
        return total, conn.execute(
            "select event, model_name, model_version, as_of_date, count(*) from analytics.model_releases"
            " group by 1, 2, 3, 4, details ->> 'trigger' having count(*) > 1"
        ).fetchall()


@pytest.mark.parametrize(
    ("phase", "when", "hold", "night"),
    [
        ("scoring", SCORING_INSERT_WAITS, "scoring", NIGHT - timedelta(days=2)),
        ("dbt build", "application_name = 'dbt' and state = 'active'", None, NIGHT - timedelta(days=1)),
        ("the swap", "wait_event_type = 'Lock' and query ilike '%customer_labels%'", "labels", NIGHT),
    ],
    ids=["scoring", "dbt build", "the swap"],
)
def test_postgres_killed_during_a_night(server: Settings, phase: str, when: str, hold: str | None, night: date,
                                        figures) -> None:
    _publish(server, night - timedelta(days=1))
    state, seen = _night_with_a_crash(server, night, when, hold)
    assert "labels" in seen, f"Postgres was never killed during {phase}"
    assert seen["labels"] == seen["before"]  # yesterday's labels, intact after the crash
    assert seen["labels"][2] == night - timedelta(days=1)
    completed_by = "the same run (step retried)"
    if not state.is_completed() and phase != "scoring":  # the run's retries ran out: the next run completes
        completed_by = "the next run"
        state = serving.load_flow(get_settings())(as_of_date=night, target="prod", retrain=True, return_state=True)
    assert state.is_completed(), state.message
    with db.connect(server) as conn:
        published = conn.execute(LABELS).fetchone()
        history = conn.execute("select count(*) from analytics.customer_label_history where as_of_date = %s",
                               [night]).fetchone()[0]
    assert published[2] == night
    assert published[0] == published[1] == history  # written once: one row per customer, tonight's history too
    events, doubled = _events(server)
    assert events > 0 and doubled == []
    figures.append((f"Postgres SIGKILL during {phase}", "recovery / night / labels / doubled events",
                    f"{seen['recovered_seconds']:.1f} s / {seen['seconds']:.0f} s / {published[0]:,} / 0 of {events},"
                    f" completed by {completed_by}"))
