"""`custlabel bench` creates and fills a database of its own: off the embedded server, only when the operator names it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from custlabel.config import Settings
from custlabel.devtools.benchmarks import BENCH_DATABASE, bench_settings
from custlabel.warehouse.guard import NotAScratchDatabase

pytestmark = pytest.mark.integration


def bench_database_exists(settings: Settings) -> bool:
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as conn:
        return conn.execute("select 1 from pg_database where datname = %s", [BENCH_DATABASE]).fetchone() is not None


@pytest.fixture
def company(make_database) -> Iterator[Settings]:
    """PG* point at a server that is not the embedded one, and a database of a company's own name."""
    settings = make_database("bench_company")
    assert not settings.embedded and not bench_database_exists(settings)
    yield settings
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{BENCH_DATABASE}" with (force)')


def test_bench_refuses_a_server_that_is_not_the_embedded_one(company: Settings) -> None:
    env = os.environ | company.connection.pg_env()
    command = [sys.executable, "-m", "custlabel.cli", "bench", "--customers", "1000", "--sections", "load"]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        "custlabel: error: refusing to create and fill a benchmark database (custlabel bench) "
        f"in the database '{BENCH_DATABASE}' at 127.0.0.1:{company.connection.port}: it is not the embedded PostgreSQL"
    )
    assert f"name it: --i-mean-database {BENCH_DATABASE}" in refused.stderr
    assert not bench_database_exists(company)


def test_bench_runs_when_the_operator_names_its_database(company: Settings) -> None:
    with pytest.raises(NotAScratchDatabase, match=f"--i-mean-database 'bench_company' does not match the database '{BENCH_DATABASE}'"):
        bench_settings(company, i_mean_database="bench_company")
    assert not bench_database_exists(company)
    assert bench_settings(company, i_mean_database=BENCH_DATABASE).connection.dbname == BENCH_DATABASE
    assert bench_database_exists(company)
