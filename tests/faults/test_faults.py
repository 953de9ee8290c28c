"""Load and fault tests on the real Postgres: BI readers through nightly swaps, a backend killed during
write-back, a hung step. Marked `faults` (`make faults` prints their figures)."""

from __future__ import annotations

import datetime as dt
import statistics
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from custlabel.config import Settings
from custlabel.devtools.benchmarks.scoring import (
    create_synthetic_features,
    create_synthetic_rule_baseline,
)
from custlabel.scoring import score, sql_scoring, writeback
from custlabel.warehouse import db, retry

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

SCHEMA = "analytics_test"
NIGHT = dt.date(2026, 6, 1)
CUSTOMERS = 5_000
READERS = 50
SWAPS = 20
READ = f"select count(*), count(*) filter (where label = 'bad'), max(score) from {SCHEMA}.{writeback.LABELS}"


def label_night(settings: Settings) -> score.ScoreSummary:
    """Tonight's labels by the rule baseline, published with the nightly swap."""
    return score.score(settings, score.ScoreRequest(SCHEMA, force=True), score.GivenModels(), sql_scoring.MemoryParityStore())


@pytest.fixture(scope="module")
def warehouse(make_database) -> Settings:
    settings = make_database("faults")
    with db.connect(settings) as conn:
        create_synthetic_features(conn, SCHEMA, CUSTOMERS, [NIGHT])
        create_synthetic_rule_baseline(conn, SCHEMA)
    label_night(settings)
    return settings


def _reader(settings: Settings, stop: threading.Event, latencies: list[float], errors: list[str]) -> None:
    try:
        with psycopg.connect(settings.connection.conninfo(), autocommit=True) as conn:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    rows = conn.execute(READ).fetchone()
                    if rows[0] != CUSTOMERS:
                        errors.append(f"read {rows[0]} labels, not {CUSTOMERS}")
                except psycopg.Error as error:
                    errors.append(f"{type(error).__name__}: {error}")
                latencies.append(time.perf_counter() - started)
    except psycopg.Error as error:
        errors.append(f"cannot connect: {error}")


def test_bi_readers_never_fail_through_nightly_swaps(warehouse: Settings, figures) -> None:
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(READERS)]
    errors: list[str] = []
    readers = [threading.Thread(target=_reader, args=(warehouse, stop, latencies[i], errors)) for i in range(READERS)]
    for reader in readers:
        reader.start()
    swap_seconds = []
    try:
        for _ in range(SWAPS):
            started = time.perf_counter()
            label_night(warehouse)
            swap_seconds.append(time.perf_counter() - started)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    reads = sorted(latency for per_reader in latencies for latency in per_reader)
    p50, p99 = statistics.median(reads), reads[int(0.99 * (len(reads) - 1))]
    figures.extend([
        ("50 BI readers, 20 swaps", "reads / errors", f"{len(reads):,} / {len(errors)}"),
        ("50 BI readers, 20 swaps", "read p50 / p99 / longest", f"{1000 * p50:.1f} / {1000 * p99:.1f} / {1000 * reads[-1]:.0f} ms"),
        ("50 BI readers, 20 swaps", "night (score + swap) median", f"{statistics.median(swap_seconds):.2f} s"),
    ])
    assert errors == []
    assert len(reads) > READERS * SWAPS


@pytest.fixture
def reader_holding_the_labels(warehouse: Settings) -> Iterator[psycopg.Connection]:
    """A BI session in an open transaction on the label table: the swap must wait for it."""
    with psycopg.connect(warehouse.connection.conninfo()) as conn:
        conn.execute(READ).fetchone()
        yield conn


def _kill_the_waiting_swap(settings: Settings, killed: list[int]) -> None:
    """Terminate the backend that waits for the label table's lock (the write-back's swap)."""
    deadline = time.monotonic() + 60
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as conn:
        while time.monotonic() < deadline and not killed:
            row = conn.execute(
                "select pid from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'"
                " and query ilike %s", [f"%{writeback.LABELS}%"]
            ).fetchone()
            if row:
                conn.execute("select pg_terminate_backend(%s)", [row[0]])
                killed.append(row[0])
            time.sleep(0.05)


def _published(settings: Settings) -> tuple[int, int, int]:
    with db.connect(settings) as conn:
        return conn.execute(sql.SQL(
            "select (select count(*) from {labels}), (select count(distinct customer_id) from {labels}),"
            " (select count(*) from {history} where as_of_date = %s)"
        ).format(labels=sql.Identifier(SCHEMA, writeback.LABELS), history=sql.Identifier(SCHEMA, writeback.HISTORY)),
            [NIGHT]).fetchone()


def test_a_backend_killed_during_write_back_is_retried_and_writes_the_labels_once(
    warehouse: Settings, reader_holding_the_labels: psycopg.Connection, figures
) -> None:
    before = _published(warehouse)
    killed: list[int] = []
    killer = threading.Thread(target=_kill_the_waiting_swap, args=(warehouse, killed))
    killer.start()
    with pytest.raises(Exception) as raised:
        label_night(warehouse)
    killer.join()
    reader_holding_the_labels.rollback()
    assert killed, "the swap never waited for the reader"
    assert retry.is_transient(raised.value.__cause__ or raised.value), raised.value
    assert _published(warehouse) == before  # the killed night left the published labels as they were
    started = time.perf_counter()
    label_night(warehouse)  # the retry
    figures.append(("backend killed in write-back", "retry / labels, distinct, history rows",
                    f"{time.perf_counter() - started:.2f} s / {'; '.join(map(str, _published(warehouse)))}"))
    assert _published(warehouse) == (CUSTOMERS, CUSTOMERS, CUSTOMERS)
