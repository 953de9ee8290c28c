"""dbt failures as the nightly flow sees them: a lost connection is retried, a broken query or test is not."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time

import psycopg
import pytest
from prefect.states import Failed

from custlabel.nightly import night_steps
from custlabel.warehouse import dbt_runner

pytestmark = pytest.mark.integration

SLEEP = "select pg_sleep(60) as slept"


def retried(error: BaseException) -> bool:
    return night_steps.is_transient(None, None, Failed(data=error))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_server_that_refuses_connections_is_retried(warehouse_settings):
    connection = dataclasses.replace(warehouse_settings.connection, port=closed_port())
    settings = dataclasses.replace(warehouse_settings, connection=connection)

    with pytest.raises(dbt_runner.DbtFailure, match="Connection refused") as raised:
        dbt_runner.run(settings, ["show", "--inline", "select 1"], target="test")

    assert retried(raised.value)
    assert raised.value.transient


def _terminate_when_running(settings, query: str, stop: threading.Event) -> None:
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as admin:
        while not stop.is_set():
            killed = admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where query like %s and pid <> pg_backend_pid()",
                [f"%{query}%"],
            ).fetchall()
            if killed:
                return
            time.sleep(0.2)


def test_a_connection_killed_mid_query_is_retried(warehouse_settings):
    stop = threading.Event()
    killer = threading.Thread(target=_terminate_when_running, args=(warehouse_settings, "pg_sleep(60)", stop))
    killer.start()
    try:
        with pytest.raises(dbt_runner.DbtFailure, match="server closed the connection unexpectedly") as raised:
            dbt_runner.run(warehouse_settings, ["show", "--inline", SLEEP], target="test")
    finally:
        stop.set()
        killer.join()

    assert retried(raised.value)
    assert raised.value.transient


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("select * from no_such_table", "does not exist"),
        ("select {{ no_such_macro() }}", "no_such_macro"),
    ],
)
def test_a_broken_query_is_not_retried(warehouse_settings, query, message):
    with pytest.raises(dbt_runner.DbtFailure, match=message) as raised:
        dbt_runner.run(warehouse_settings, ["show", "--inline", query], target="test")

    assert not retried(raised.value)
    assert not raised.value.transient


def test_a_night_that_is_not_a_date_never_reaches_dbt(warehouse_settings):
    with pytest.raises(dbt_runner.CustlabelError, match="as_of_date must be a date written YYYY-MM-DD"):
        dbt_runner.run(warehouse_settings, ["build"], target="test", as_of_date="2026-06-30'::date; drop schema master_data cascade; --")
