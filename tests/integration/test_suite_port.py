"""The suite's own PostgreSQL runs on a free port, so a program holding a port does not stop a test run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from helpers.ports import free_port

# A new pytest session makes pytest's temporary root private again, which cuts a server running as its own
# account off its data there: under xdist, this module runs on the worker of the tests that start such servers.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("own_servers")]

TESTS = Path(__file__).resolve().parents[1]
OLD_FIXED_PORT = 55433
# A quick test that needs the session's server.
NEEDS_THE_SERVER = "integration/test_embedded_postgres.py::test_external_server_is_checked_not_started"


def run_suite(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run one test of the suite in a fresh pytest process, which starts its own session server."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TESTS / NEEDS_THE_SERVER)]
    return subprocess.run(command, env=env, cwd=TESTS.parent, capture_output=True, text=True, timeout=600)


def fresh_env() -> dict[str, str]:
    """The environment of a developer who sets nothing: no PG* variables and no chosen test port."""
    drop = ("CUSTLABEL_TEST_PG_PORT", "DATABASE_URL", "CUSTLABEL_LOCAL_DIR")
    return {name: value for name, value in os.environ.items() if name not in drop and not name.startswith("PG")}


def hold(port: int) -> socket.socket | None:
    """Listen on port so that no server can; None when another program holds it already."""
    squatter = socket.socket()
    try:
        squatter.bind(("127.0.0.1", port))
    except OSError:
        squatter.close()
        return None
    squatter.listen()
    return squatter


def test_the_suite_starts_while_the_old_fixed_port_is_held(warehouse_settings) -> None:
    squatter = hold(OLD_FIXED_PORT)
    try:
        result = run_suite(fresh_env())
    finally:
        if squatter is not None:
            squatter.close()

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
    # The second pytest session made pytest's temporary root private again: this
    # session's server must still reach its data (a new table, a checkpoint).
    with psycopg.connect(warehouse_settings.connection.conninfo(), autocommit=True) as conn:
        conn.execute("create table if not exists suite_port_probe (id int)")
        conn.execute("checkpoint")
        conn.execute("drop table suite_port_probe")


def test_a_chosen_test_port_that_is_held_stops_the_run_with_how_to_fix_it() -> None:
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = run_suite(fresh_env() | {"CUSTLABEL_TEST_PG_PORT": str(port)})

    assert result.returncode == 2
    assert (
        f"CUSTLABEL_TEST_PG_PORT={port}: port {port} on 127.0.0.1 is already in use by another process; "
        "choose another port, or unset CUSTLABEL_TEST_PG_PORT and the suite picks a free one"
    ) in result.stdout + result.stderr
