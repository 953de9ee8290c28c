"""Postgres killed (SIGKILL) while the write-back waits to swap: the labels stay as they were, the next run completes."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from custlabel.config import Settings, get_settings
from custlabel.devtools.benchmarks.scoring import (
    create_synthetic_features,
    create_synthetic_rule_baseline,
)
from custlabel.scoring import score, sql_scoring, writeback
from custlabel.warehouse import db, embedded_postgres
from helpers.ports import free_port

# With the other tests that run a server in pytest's temporary folder: one worker, one at a time (test_suite_port.py).
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults, pytest.mark.xdist_group("own_servers")]

SCHEMA = "analytics_test"
NIGHT = dt.date(2026, 6, 1)
CUSTOMERS = 5_000


@pytest.fixture
def server() -> Iterator[Settings]:
    """An embedded server of its own (the session's must survive), with tonight's labels published once."""
    # Outside pytest's temporary root, which another pytest session makes private again (see tests/conftest.py).
    local = Path(tempfile.mkdtemp(prefix="custlabel-faults-swap-"))
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG") and name != "DATABASE_URL"}
    settings = get_settings({**env, "CUSTLABEL_LOCAL_DIR": str(local), "CUSTLABEL_PG_PORT": str(free_port())})
    embedded_postgres.start(settings)
    try:
        with db.connect(settings) as conn:
            create_synthetic_features(conn, SCHEMA, CUSTOMERS, [NIGHT])
            create_synthetic_rule_baseline(conn, SCHEMA)
        label_night(settings)
        yield settings
    finally:
        embedded_postgres.stop(settings)
        shutil.rmtree(local, ignore_errors=True)


def label_night(settings: Settings) -> score.ScoreSummary:
    return score.score(settings, score.ScoreRequest(SCHEMA, force=True), score.GivenModels(), sql_scoring.MemoryParityStore())


def published(settings: Settings) -> tuple:
    """The label table (rows, customers, a hash of the labels) and the night's history (rows, when they were written)."""
    with db.connect(settings) as conn:
        return conn.execute(sql.SQL(
            "select count(*), count(distinct customer_id), md5(string_agg(customer_id || label, ',' order by customer_id)),"
            " (select count(*) from {history} where as_of_date = %(night)s),"
            " (select max(scored_at) from {history} where as_of_date = %(night)s) from {labels}"
        ).format(labels=sql.Identifier(SCHEMA, writeback.LABELS), history=sql.Identifier(SCHEMA, writeback.HISTORY)),
            {"night": NIGHT}).fetchone()


def _kill_postgres_when_the_swap_waits(settings: Settings, killed: list[int]) -> None:
    deadline = time.monotonic() + 60
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute("select count(*) from pg_stat_activity where wait_event_type = 'Lock'").fetchone()[0]
            if waiting:
                pid = embedded_postgres.read_postmaster(settings.embedded_data_dir).pid
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)


def _wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + 30
    while embedded_postgres.is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_postgres_killed_during_the_swap_leaves_the_labels_and_the_next_run_completes(server: Settings, figures) -> None:
    before = published(server)
    killed: list[int] = []
    reader = psycopg.connect(server.connection.conninfo())
    reader.execute(f"select count(*) from {SCHEMA}.{writeback.LABELS}").fetchone()  # holds the table: the swap waits
    killer = threading.Thread(target=_kill_postgres_when_the_swap_waits, args=(server, killed))
    killer.start()
    with pytest.raises(Exception):
        label_night(server)
    killer.join()
    reader.close()
    assert killed
    _wait_until_gone(killed[0])  # a supervisor restarts the server once it has seen it exit
    started = time.monotonic()
    embedded_postgres.start(server)  # crash recovery
    recovered = time.monotonic() - started
    assert published(server) == before  # the labels and the night's history, as the killed run found them
    started = time.monotonic()
    label_night(server)
    after = published(server)
    figures.append(("Postgres SIGKILL during the swap", "recovery / next night / labels",
                    f"{recovered:.1f} s / {time.monotonic() - started:.1f} s / {after[0]:,} ({after[1]:,} distinct)"))
    assert after[:2] == (CUSTOMERS, CUSTOMERS)
