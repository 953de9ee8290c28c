"""Fixtures shared by the whole suite."""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from custlabel.config import Settings, get_settings
from custlabel.warehouse import embedded_postgres
from helpers.demo_warehouse import DEMO_END_DATE, DemoData
from helpers.ports import free_port

pytest_plugins = ["pytester", "helpers.markers", "helpers.worker_groups", "helpers.fault_figures"]

# Variables that select an external server; the session's own server must not see them.
EXTERNAL_SERVER_VARIABLES = ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "DATABASE_URL")


def _start_session_server(folder: Path, worker_id: str) -> Settings:
    """Start the embedded PostgreSQL that the test session uses: on CUSTLABEL_TEST_PG_PORT (plus the
    xdist worker's number), or a free port."""
    env = {name: value for name, value in os.environ.items() if name not in EXTERNAL_SERVER_VARIABLES}
    env["CUSTLABEL_LOCAL_DIR"] = str(folder)
    chosen = os.environ.get("CUSTLABEL_TEST_PG_PORT")
    worker_number = int(worker_id.removeprefix("gw")) if worker_id.startswith("gw") else 0
    port = int(chosen) + worker_number if chosen else None
    if port and not embedded_postgres.port_is_free("127.0.0.1", port):
        pytest.exit(
            f"CUSTLABEL_TEST_PG_PORT={chosen}: port {port} on 127.0.0.1 is already in use by another process; "
            "choose another port, or unset CUSTLABEL_TEST_PG_PORT and the suite picks a free one",
            returncode=2,
        )
    env["CUSTLABEL_PG_PORT"] = str(port or free_port())
    server = get_settings(env)
    embedded_postgres.start(server)
    return server


def _set_environ(values: dict[str, str | None]) -> None:
    """Set (or, for None, remove) variables in os.environ."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _ensure_dbt_packages(lock_folder: Path) -> None:
    """Install the dbt packages once, before any worker's dbt run: parallel workers would race on dbt_packages/."""
    from custlabel.warehouse import dbt_runner

    with (lock_folder / "dbt-deps.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (get_settings().project_dir / "dbt_packages" / "dbt_expectations").exists():
            dbt_runner.run(get_settings(), ["deps"])


@pytest.fixture(scope="session")
def warehouse_settings(worker_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for one PostgreSQL per session, reached as an external server through PG* variables.

    Its folder lies outside pytest's temporary root: any other pytest session that starts
    (the suite runs one itself) makes that root private again, and the server, which runs
    as its own account when we are root, would lose its data directory.

    Under pytest-xdist every worker has a server of its own, and dbt writes its target/ files
    (manifest, run_results.json, partial parse) to a folder of the worker's (DBT_TARGET_PATH).
    """
    _ensure_dbt_packages(tmp_path_factory.getbasetemp().parent)
    folder = Path(tempfile.mkdtemp(prefix=f"custlabel-tests-{worker_id}-"))
    try:
        server = _start_session_server(folder / "server", worker_id)
    except BaseException:  # pytest.exit included: nothing of the session is left behind
        shutil.rmtree(folder, ignore_errors=True)
        raise
    # Set for the whole session, so that code calling get_settings() without arguments sees this server.
    session_env: dict[str, str | None] = {
        **server.connection.pg_env(),
        "DATABASE_URL": None,
        "CUSTLABEL_LOCAL_DIR": str(folder / "local"),
        "DBT_TARGET_PATH": None if worker_id == "master" else f"target/{worker_id}",
        # dbt's debug log of every statement costs a tenth of a small build; the tests that read it turn it on.
        # On the terminal, which pytest captures, dbt's warnings and errors only.
        "DBT_LOG_LEVEL_FILE": "none",
        "DBT_LOG_LEVEL": "warn",
    }
    saved = {name: os.environ.get(name) for name in session_env}
    _set_environ(session_env)
    try:
        yield get_settings(dict(os.environ))
    finally:
        _set_environ(saved)
        embedded_postgres.stop(server)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_env(warehouse_settings: Settings) -> dict[str, str]:
    """The PG* variables of the session's server, for dbt and psql runs."""
    return warehouse_settings.connection.pg_env()


@pytest.fixture(scope="session")
def built_warehouse(warehouse_settings: Settings) -> Settings:
    """The session's server with small demo master data and a full `dbt build` as of DEMO_END_DATE."""
    from custlabel.demo import loader
    from custlabel.warehouse import dbt_runner

    # The session's server is reached as an external one, so the demo must be told the database it may overwrite.
    loader.generate_and_load(
        customers=3_000, days=540, seed=11, end_date=DEMO_END_DATE, settings=warehouse_settings,
        i_mean_database=warehouse_settings.connection.dbname,
    )
    dbt_runner.run(warehouse_settings, ["build"], target="prod", as_of_date=DEMO_END_DATE)
    return warehouse_settings


@pytest.fixture(scope="session")
def make_database(warehouse_settings: Settings) -> Iterator:
    """Factory for a database on the session's server, dropped at the end of the session.

    Empty, or with `demo` master data: generated once a session into a template database and
    copied from it (CREATE DATABASE ... TEMPLATE copies files, far faster than generating again).
    """
    import psycopg

    created: list[str] = []

    def create(name: str, template: str | None = None) -> Settings:
        with psycopg.connect(warehouse_settings.connection.conninfo(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            if template:  # a copy needs its template without sessions
                conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", [template])
            conn.execute(f'create database "{name}"' + (f' template "{template}"' if template else ""))
        created.append(name)
        return get_settings({**os.environ, "PGDATABASE": name})

    def make(name: str, demo: DemoData | None = None) -> Settings:
        if demo is None:
            return create(name)
        if demo.template not in created:
            from custlabel.demo import loader

            template = create(demo.template)
            loader.generate_and_load(customers=demo.customers, days=demo.days, seed=demo.seed, end_date=demo.end_date,
                                     settings=template, i_mean_database=demo.template)
        return create(name, template=demo.template)

    yield make
    with psycopg.connect(warehouse_settings.connection.conninfo(), autocommit=True) as conn:
        for name in created:
            conn.execute(f'drop database if exists "{name}" with (force)')


PASSWORD_RULES = """\
# Added by the test session: these roles log in with a real password (scram), not trust.
host    all       custlabel_bi    127.0.0.1/32  scram-sha-256
host    all       /^pw_           127.0.0.1/32  scram-sha-256
"""


@pytest.fixture(scope="session")
def password_auth(warehouse_settings: Settings) -> Settings:
    """The session's server with password authentication for custlabel_bi and roles named pw_*."""
    import psycopg

    with psycopg.connect(warehouse_settings.connection.conninfo(), autocommit=True) as conn:
        hba_file = Path(conn.execute("show hba_file").fetchone()[0])
        rules = hba_file.read_text()
        if PASSWORD_RULES not in rules:
            hba_file.write_text(PASSWORD_RULES + rules)  # first match wins: before the trust lines
        conn.execute("select pg_reload_conf()")
        errors = conn.execute("select line_number, error from pg_hba_file_rules where error is not null").fetchall()
    assert not errors, errors
    _wait_for_password_prompt(warehouse_settings)
    return warehouse_settings


def _wait_for_password_prompt(settings: Settings, seconds: float = 15.0) -> None:
    """The reload is asynchronous: wait until the server asks a pw_* role for its password."""
    import time

    import psycopg

    probe = dataclasses.replace(settings.connection, user="pw_probe", password="")
    deadline = time.monotonic() + seconds
    while True:
        try:
            psycopg.connect(probe.conninfo()).close()
        except psycopg.OperationalError as error:
            if "password" in str(error) or time.monotonic() > deadline:
                assert "password" in str(error), f"the server did not switch to password authentication: {error}"
                return
        time.sleep(0.2)
