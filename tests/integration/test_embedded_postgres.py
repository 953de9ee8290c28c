"""The embedded PostgreSQL, with real servers in temporary folders on free ports."""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from custlabel.config import Settings, get_settings
from custlabel.demo import loader
from custlabel.errors import CustlabelError
from custlabel.warehouse import embedded_postgres
from helpers.ports import free_ports

# With the other tests that run a server in pytest's temporary folder: one worker, one at a time (test_suite_port.py).
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("own_servers")]

# Picked once per session: fixed numbers collide with other test runs on the same machine.
MAIN_PORT, RESTART_PORT, CRASH_PORT, BUSY_PORT, NOBODY_PORT, OTHER_PORT = free_ports(6)


def embedded_env(local_dir: Path, port: int) -> dict[str, str]:
    """An environment that selects the embedded server in local_dir on port."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    env.pop("DATABASE_URL", None)
    return env | {"CUSTLABEL_LOCAL_DIR": str(local_dir), "CUSTLABEL_PG_PORT": str(port)}


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `custlabel ARGS` in a fresh process."""
    command = [sys.executable, "-m", "custlabel.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def query_one(settings: Settings, query: str) -> object:
    """The first value of a query's first row, over TCP."""
    with psycopg.connect(settings.connection.conninfo()) as conn:
        return conn.execute(query).fetchone()[0]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of an embedded server started for this module."""
    settings = get_settings(embedded_env(tmp_path_factory.mktemp("embedded"), MAIN_PORT))
    embedded_postgres.start(settings)
    yield settings
    embedded_postgres.stop(settings)


def test_start_twice_returns_the_same_connection_and_server(embedded: Settings) -> None:
    before = embedded_postgres.status(embedded)

    assert embedded_postgres.start(embedded) == embedded_postgres.start(embedded) == embedded.connection
    assert embedded_postgres.status(embedded) == before


def test_psycopg_connects_over_tcp_to_the_custlabel_database(embedded: Settings) -> None:
    with psycopg.connect(embedded.connection.conninfo()) as conn:
        row = conn.execute(
            "select current_database(), current_user, host(inet_server_addr()),"
            " current_setting('server_version_num')::int, current_setting('shared_buffers'),"
            " current_setting('work_mem'), current_setting('max_parallel_workers_per_gather'),"
            " current_setting('synchronous_commit')"
        ).fetchone()

    # synchronous_commit on: a night the flow reports as published survives a crash of the server
    assert row == ("custlabel", "postgres", "127.0.0.1", row[3], "1GB", "64MB", "2", "on")
    assert 160000 <= row[3] < 170000


def test_server_listens_on_a_unix_socket_under_local_dir(embedded: Settings) -> None:
    socket_dir = embedded_postgres.read_postmaster(embedded.embedded_data_dir).socket_dir

    with psycopg.connect(host=socket_dir, port=MAIN_PORT, user="postgres", dbname="custlabel") as conn:
        server_address = conn.execute("select inet_server_addr()").fetchone()[0]

    assert socket_dir == str(embedded.local_dir / "run")
    assert server_address is None  # a unix socket connection has no server address


def test_psql_connects_over_tcp(embedded: Settings) -> None:
    psql = embedded_postgres.bin_dir() / "psql"
    command = [str(psql), "-h", "127.0.0.1", "-p", str(MAIN_PORT), "-U", "postgres", "-d", "custlabel"]

    passfile = {"PGPASSFILE": str(embedded_postgres.passfile_path(embedded.local_dir))}
    result = subprocess.run([*command, "-tAc", "select current_database()"], capture_output=True, text=True,
                            env={**os.environ, **passfile})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "custlabel"


def psql_as(account: str, conninfo: str) -> subprocess.CompletedProcess:
    """psql run as another OS account, never prompting for a password."""
    psql = embedded_postgres.bin_dir() / "psql"
    who = pwd.getpwnam(account)
    return subprocess.run(
        [str(psql), "-w", conninfo, "-tAc", "select current_user"], capture_output=True, text=True, cwd="/",
        env={"PATH": os.defpath}, timeout=60, user=who.pw_uid, group=who.pw_gid, extra_groups=[],
    )


@pytest.fixture
def other_account() -> Iterator[str]:
    """A throwaway OS account (we run as root in CI), removed afterwards."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root and useradd to create a second OS account")
    name = f"clprobe{os.getpid() % 100000}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


def test_another_os_account_cannot_log_in(embedded: Settings, other_account: str) -> None:
    socket_dir = embedded_postgres.read_postmaster(embedded.embedded_data_dir).socket_dir
    tcp = psql_as(other_account, f"host=127.0.0.1 port={MAIN_PORT} user=postgres dbname=custlabel")
    by_socket = psql_as(other_account, f"host={socket_dir} port={MAIN_PORT} user=postgres dbname=custlabel")

    assert tcp.returncode != 0 and "no password supplied" in tcp.stderr, tcp.stderr
    assert by_socket.returncode != 0 and "Permission denied" in by_socket.stderr, by_socket.stderr
    passfile = embedded_postgres.passfile_path(embedded.local_dir)
    assert passfile.stat().st_mode & 0o777 == 0o600
    assert query_one(embedded, "select current_user") == "postgres"


def test_a_trusting_data_dir_of_an_earlier_version_is_upgraded_on_start(tmp_path: Path) -> None:
    settings = get_settings(embedded_env(tmp_path, RESTART_PORT))
    embedded_postgres.start(settings)
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as conn:
        conn.execute("alter role postgres password null")  # as initdb --auth=trust left it
    embedded_postgres.stop(settings)
    earlier = f"{embedded_postgres.TRUSTING_HBA_HEADER}\nlocal all all trust\nhost all all 127.0.0.1/32 trust\n"
    (settings.embedded_data_dir / "pg_hba.conf").write_text(earlier)
    embedded_postgres.passfile_path(tmp_path).unlink()

    embedded_postgres.start(settings)
    try:
        nothing = psycopg.connect(host="127.0.0.1", port=RESTART_PORT, user="postgres", dbname="custlabel",
                                  password="", passfile="/dev/null")
    except psycopg.OperationalError as error:
        refused = str(error)
    else:
        nothing.close()
        refused = ""
    try:
        assert "no password supplied" in refused
        assert query_one(settings, "select count(*) from pg_authid where rolname = 'postgres' and rolpassword like 'SCRAM-SHA-256$%'") == 1
    finally:
        embedded_postgres.stop(settings)


def test_status_url_and_env_describe_the_server(embedded: Settings) -> None:
    pid = embedded_postgres.read_postmaster(embedded.embedded_data_dir).pid

    assert embedded_postgres.run_action(embedded, "status") == (
        f"embedded PostgreSQL running: pid {pid}, port {MAIN_PORT}, socket dir {embedded.local_dir / 'run'}, "
        f"data dir {embedded.embedded_data_dir}"
    )
    passfile = embedded_postgres.passfile_path(embedded.local_dir)
    expected_url = f"postgresql+psycopg://postgres@127.0.0.1:{MAIN_PORT}/custlabel?passfile={str(passfile).replace('/', '%2F')}"
    assert embedded_postgres.run_action(embedded, "url") == expected_url
    env_lines = embedded_postgres.run_action(embedded, "env").splitlines()
    assert env_lines[:4] == [
        "export PGHOST=127.0.0.1",
        f"export PGPORT={MAIN_PORT}",
        "export PGUSER=postgres",
        "export PGDATABASE=custlabel",
    ]


def test_eval_of_db_env_lets_psql_connect(embedded: Settings) -> None:
    query = "select current_user || '@' || current_database()"
    script = f'eval "$({sys.executable} -m custlabel.cli db env)" && psql -tAc "{query}"'
    env = embedded_env(embedded.local_dir, MAIN_PORT)

    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "postgres@custlabel"


def test_the_demo_loads_on_the_embedded_server_without_naming_the_database(embedded: Settings) -> None:
    summary = loader.generate_and_load(customers=50, days=60, seed=1, end_date="2026-06-30", settings=embedded)
    # The same server named by PG* variables, as after `eval "$(custlabel db env)"`.
    by_pg_env = get_settings(embedded_env(embedded.local_dir, MAIN_PORT) | embedded.connection.pg_env())
    again = loader.generate_and_load(customers=40, days=60, seed=1, end_date="2026-06-30", settings=by_pg_env)

    assert not by_pg_env.embedded
    assert summary.startswith("demo master data: ") and again.startswith("demo master data: ")
    assert query_one(embedded, "select count(distinct customer_id) from master_data.customers") == 40


def test_start_on_another_port_while_running_names_the_running_port(embedded: Settings) -> None:
    elsewhere = get_settings(embedded_env(embedded.local_dir, OTHER_PORT))

    expected = f"already running on port {MAIN_PORT}.*CUSTLABEL_PG_PORT={MAIN_PORT}"
    with pytest.raises(CustlabelError, match=expected):
        embedded_postgres.start(elsewhere)


def test_stop_is_idempotent_and_the_server_starts_again_with_its_data(tmp_path: Path) -> None:
    settings = get_settings(embedded_env(tmp_path, RESTART_PORT))
    embedded_postgres.start(settings)
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as conn:
        conn.execute("create table kept as select 42 as answer")

    data_dir = settings.embedded_data_dir

    assert embedded_postgres.stop(settings).startswith("embedded PostgreSQL stopped (was pid")
    assert embedded_postgres.status(settings) == f"embedded PostgreSQL stopped (data dir {data_dir})"
    assert embedded_postgres.stop(settings) == f"embedded PostgreSQL already stopped (data dir {data_dir})"

    embedded_postgres.start(settings)
    try:
        assert query_one(settings, "select answer from kept") == 42
    finally:
        embedded_postgres.stop(settings)


def test_start_recovers_from_a_crash_that_left_a_stale_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = get_settings(embedded_env(tmp_path, CRASH_PORT))
    embedded_postgres.start(settings)
    crashed_pid = embedded_postgres.read_postmaster(settings.embedded_data_dir).pid
    os.kill(crashed_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while embedded_postgres.is_alive(crashed_pid) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert embedded_postgres.status(settings).startswith("embedded PostgreSQL stopped")
    with caplog.at_level(logging.WARNING, logger="custlabel.warehouse.embedded_postgres"):
        embedded_postgres.start(settings)
    try:
        assert f"removed stale lock {settings.embedded_data_dir / 'postmaster.pid'}" in caplog.text
        assert f"(pid {crashed_pid}) is gone" in caplog.text
        assert embedded_postgres.read_postmaster(settings.embedded_data_dir).pid != crashed_pid
        assert query_one(settings, "select current_database()") == "custlabel"
    finally:
        embedded_postgres.stop(settings)


def test_port_taken_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", BUSY_PORT))
        squatter.listen()

        result = cli(["db", "start"], embedded_env(tmp_path, BUSY_PORT))

    assert result.returncode == 2
    message = result.stderr.strip()
    assert message.startswith(
        f"custlabel: error: port {BUSY_PORT} on 127.0.0.1 is already in use by another process: "
        "choose another port for the embedded PostgreSQL with CUSTLABEL_PG_PORT, for example `export CUSTLABEL_PG_PORT="
    )
    suggested = int(re.search(r"CUSTLABEL_PG_PORT=(\d+)`", message).group(1))
    assert suggested != BUSY_PORT and embedded_postgres.port_is_free("127.0.0.1", suggested)
    assert not (tmp_path / "pgdata").exists()


def test_external_server_is_checked_not_started(warehouse_settings: Settings) -> None:
    assert not warehouse_settings.embedded

    assert embedded_postgres.start(warehouse_settings) == warehouse_settings.connection
    assert not warehouse_settings.embedded_data_dir.exists()
    # No arguments: the session's PG* variables select the external server.
    assert embedded_postgres.run_action(get_settings(), "status").startswith(
        f"external PostgreSQL at 127.0.0.1:{warehouse_settings.connection.port}/custlabel"
    )
    assert embedded_postgres.run_action(get_settings(), "stop").endswith("(not managed by custlabel): nothing to stop")
    assert query_one(warehouse_settings, "select 1") == 1


def test_unreachable_external_server_is_a_clear_error(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "local", NOBODY_PORT) | {"PGHOST": "127.0.0.1", "PGPORT": str(NOBODY_PORT)}
    settings = get_settings(env)

    expected = f"cannot connect to the external PostgreSQL at 127.0.0.1:{NOBODY_PORT}"
    with pytest.raises(CustlabelError, match=expected):
        embedded_postgres.start(settings)
    assert not settings.local_dir.exists()


def test_a_trusting_server_of_an_earlier_version_still_running_is_secured_by_start(tmp_path: Path) -> None:
    settings = get_settings(embedded_env(tmp_path, RESTART_PORT))
    embedded_postgres.start(settings)
    try:
        earlier = f"{embedded_postgres.TRUSTING_HBA_HEADER}\nlocal all all trust\nhost all all 127.0.0.1/32 trust\n"
        with psycopg.connect(settings.connection.conninfo(), autocommit=True) as conn:
            conn.execute("alter role postgres password null")
            (settings.embedded_data_dir / "pg_hba.conf").write_text(earlier)
            conn.execute("select pg_reload_conf()")
        embedded_postgres.passfile_path(tmp_path).unlink()
        time.sleep(1)  # the reload is asynchronous
        trusted = psycopg.connect(host="127.0.0.1", port=RESTART_PORT, user="postgres", dbname="postgres", passfile="/dev/null")
        trusted.close()  # as an earlier version left it: anyone on 127.0.0.1 is superuser

        embedded_postgres.start(settings)  # already running: secured in place
        time.sleep(1)
        with pytest.raises(psycopg.OperationalError, match="no password supplied"):
            psycopg.connect(host="127.0.0.1", port=RESTART_PORT, user="postgres", dbname="postgres", passfile="/dev/null")
        assert query_one(settings, "select rolpassword like 'SCRAM-SHA-256$%' from pg_authid where rolname = 'postgres'")
    finally:
        embedded_postgres.stop(settings)
