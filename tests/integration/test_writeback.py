"""Write-back readers can trust: grants survive the swap; failed or killed runs leave yesterday's labels."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
import os
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest
import yaml
from psycopg import sql

from custlabel.config import DEFAULT_PROJECT_DIR, Settings, SwapWait
from custlabel.devtools.benchmarks.scoring import create_synthetic_features
from custlabel.scoring import score, sql_scoring, writeback
from custlabel.warehouse import db
from helpers.scoring import create_synthetic_rule_baseline

pytestmark = pytest.mark.integration

SCHEMA = "analytics_test"
CUSTOMERS = 300
NIGHT = dt.date(2026, 6, 1)
READER = "custlabel_test_reader"


@pytest.fixture(scope="module")
def warehouse(make_database) -> Settings:
    settings = make_database("writeback_it")
    with db.connect(settings) as conn:
        create_synthetic_features(conn, SCHEMA, CUSTOMERS, [NIGHT])
        create_synthetic_rule_baseline(conn, SCHEMA)
        if not conn.execute("select 1 from pg_roles where rolname = %s", [READER]).fetchone():
            conn.execute(sql.SQL("create role {}").format(sql.Identifier(READER)))
    return settings


def rule_night(settings: Settings) -> score.ScoreSummary:
    return score.score(settings, score.ScoreRequest("analytics_test", force=True), score.GivenModels(), sql_scoring.MemoryParityStore())


def state(settings: Settings) -> tuple:
    """What a reader would notice changing: the rows, their scored_at, the history of the night."""
    with db.connect(settings) as conn:
        labels = conn.execute(f"select count(*), min(scored_at), max(scored_at) from {SCHEMA}.customer_labels").fetchone()
        history = conn.execute(
            f"select count(*), max(scored_at) from {SCHEMA}.customer_label_history where as_of_date = %s", [NIGHT]
        ).fetchone()
        staging = conn.execute("select to_regclass(%s)", [f"{SCHEMA}.{writeback.STAGING}"]).fetchone()[0]
    return labels, history, staging


def can_select(settings: Settings, role: str, table: str) -> bool:
    with db.connect(settings) as conn:
        return conn.execute("select has_table_privilege(%s, %s, 'select')", [role, f"{SCHEMA}.{table}"]).fetchone()[0]


def test_first_table_takes_the_history_readers_and_grants_survive_swaps(warehouse):
    with db.connect(warehouse) as conn:
        writeback.ensure_history(conn, SCHEMA)
        conn.execute(sql.SQL("grant select on {} to {}").format(sql.Identifier(SCHEMA, writeback.HISTORY), sql.Identifier(READER)))
    rule_night(warehouse)
    assert can_select(warehouse, READER, writeback.LABELS)
    with db.connect(warehouse) as conn:
        conn.execute(sql.SQL("revoke select on {} from {}").format(sql.Identifier(SCHEMA, writeback.HISTORY), sql.Identifier(READER)))
        conn.execute(sql.SQL("grant select, references on {} to {}").format(sql.Identifier(SCHEMA, writeback.LABELS), sql.Identifier(READER)))
    rule_night(warehouse)
    rule_night(warehouse)
    assert can_select(warehouse, READER, writeback.LABELS)
    with db.connect(warehouse) as conn:
        assert conn.execute(
            "select has_table_privilege(%s, %s, 'references')", [READER, f"{SCHEMA}.{writeback.LABELS}"]
        ).fetchone()[0]


def test_error_in_the_middle_of_the_copy_leaves_yesterdays_table(warehouse):
    rule_night(warehouse)
    before = state(warehouse)
    with pytest.raises(RuntimeError, match="writer died"), db.connect(warehouse) as conn:
        writeback.begin_night(conn, SCHEMA)
        with writeback.copy_into_staging(conn, SCHEMA) as copy:
            copy.write(b'"C1","bad",0.9,0.5,"m","1",2026-06-01,,,\n')
            raise RuntimeError("writer died")
    assert state(warehouse) == before


@pytest.fixture(scope="module")
def empty_registry(tmp_path_factory) -> dict[str, str]:
    """An MLflow store of our own, with nothing registered: the scorer falls back to the rule baseline.

    The synthetic rule labels about 80% bad: the project's acceptance criteria, with a
    capacity that allows it, come from a home of their own.
    """
    folder = tmp_path_factory.mktemp("registry")
    criteria = yaml.safe_load((DEFAULT_PROJECT_DIR / "acceptance.yml").read_text())
    criteria["performance"]["max_bad_share"] = 1.0
    (folder / "acceptance.yml").write_text(yaml.safe_dump(criteria))
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "CUSTLABEL_LOCAL_DIR": str(folder / "local"),
        "CUSTLABEL_HOME": str(folder),
    }


def _scorer(settings: Settings, registry_env: dict[str, str]) -> subprocess.Popen:
    """`custlabel score --target test` in its own process."""
    env = {**os.environ, **settings.connection.pg_env(), **registry_env}
    command = [sys.executable, "-m", "custlabel.cli", "score", "--target", "test", "--force"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_blocked_swap(settings: Settings, process: subprocess.Popen, seconds: float = 60) -> int:
    """The backend pid of the scorer once it waits for our lock to drop the old table."""
    deadline = time.monotonic() + seconds
    with db.connect(settings, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "select pid from pg_stat_activity where datname = current_database()"
                " and wait_event_type = 'Lock' and query ilike 'drop table%customer_labels%'"
            ).fetchone()
            if row:
                return row[0]
            if process.poll() is not None:
                raise AssertionError(f"the scorer ended before the swap: {process.communicate()}")
            time.sleep(0.2)
    process.kill()
    raise AssertionError("the scorer never reached the swap")


def _backend_alive(settings: Settings, pid: int) -> bool:
    with db.connect(settings, autocommit=True) as conn:
        return conn.execute("select 1 from pg_stat_activity where pid = %s", [pid]).fetchone() is not None


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "terminated"])
def test_run_stopped_mid_write_leaves_yesterdays_labels(warehouse, empty_registry, how):
    rule_night(warehouse)
    before = state(warehouse)
    # A BI reader holding the table makes the scorer wait right before its swap: staging and
    # tonight's history rows are written but not committed when the process is stopped.
    reader = psycopg.connect(warehouse.connection.conninfo())
    reader.execute(f"select count(*) from {SCHEMA}.customer_labels")
    process = _scorer(warehouse, empty_registry)
    try:
        backend = _wait_for_blocked_swap(warehouse, process)
        process.send_signal(how)
        _, stderr = process.communicate(timeout=30)
    finally:
        reader.rollback()
        reader.close()
    deadline = time.monotonic() + 30
    while _backend_alive(warehouse, backend) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _backend_alive(warehouse, backend)
    assert state(warehouse) == before
    if how == signal.SIGTERM:
        assert process.returncode == 2
        assert "custlabel: error: stopped by signal 15; nothing was published" in stderr
        assert f"{SCHEMA}.customer_labels is unchanged" in stderr


@pytest.fixture()
def short_swap_wait(warehouse: Settings) -> Settings:
    """The warehouse with tries of 300 ms, 200 ms apart, for at most 4 s (the defaults: 2 s, 3 s, 20 min)."""
    return replace(warehouse, swap_wait=SwapWait(lock_timeout="300ms", pause_seconds=0.2, max_wait_seconds=4))


def _long_reader(settings: Settings, application: str) -> psycopg.Connection:
    """A BI session inside a long query's transaction: it holds ACCESS SHARE on customer_labels."""
    reader = psycopg.connect(settings.connection.conninfo(), application_name=application)
    reader.execute(f"select count(*) from {SCHEMA}.customer_labels")
    return reader


def test_a_long_reader_delays_the_swap_without_failing_or_blocking_other_readers(short_swap_wait):
    warehouse = short_swap_wait
    rule_night(warehouse)
    reader = _long_reader(warehouse, "long dashboard")
    threading.Timer(2.5, reader.rollback).start()
    other_readers: list[float] = []

    def read_while_the_swap_waits() -> None:
        time.sleep(1.0)
        with psycopg.connect(warehouse.connection.conninfo()) as other:
            started = time.monotonic()
            other.execute(f"select count(*) from {SCHEMA}.customer_labels")
            other_readers.append(time.monotonic() - started)

    other = threading.Thread(target=read_while_the_swap_waits)
    other.start()
    try:
        summary = rule_night(warehouse)
    finally:
        other.join()
        reader.close()
    assert summary.customers == CUSTOMERS
    # Queued behind the swap's lock request for at most one try, not for the long reader's whole query.
    assert other_readers and other_readers[0] < 1.0


def test_a_reader_that_outlasts_the_bound_fails_the_swap_naming_its_session(short_swap_wait):
    warehouse = short_swap_wait
    rule_night(warehouse)
    before = state(warehouse)
    reader = _long_reader(warehouse, "endless dashboard")
    pid = reader.info.backend_pid
    started = time.monotonic()
    try:
        with pytest.raises(writeback.WriteBackError) as raised:
            rule_night(warehouse)
    finally:
        reader.close()
    message = str(raised.value)
    assert time.monotonic() - started < 30
    assert f"{SCHEMA}.customer_labels stayed in use by readers for" in message
    assert f"pid {pid} (user postgres, application 'endless dashboard', idle in transaction, query started" in message
    assert "yesterday's labels stay" in message
    assert state(warehouse) == before
