"""`demo-data` and `simulate` rewrite master data and drop schemas: off the embedded server, only on a named database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date

import pytest

from custlabel.config import PASSFILE, Settings, get_settings
from custlabel.demo import loader, simulation
from custlabel.warehouse import db
from custlabel.warehouse.guard import NotAScratchDatabase

pytestmark = pytest.mark.integration

END = date(2026, 6, 30)
SMALL = {"customers": 200, "days": 120, "seed": 2, "end_date": END}

STATE = """
select
    (select md5(string_agg(c::text, '|' order by c::text)) from master_data.customers as c),
    (select md5(string_agg(s::text, '|' order by s::text)) from master_data.sales as s),
    (select string_agg(nspname, ',' order by nspname) from pg_namespace
     where nspname like 'analytics%' or nspname = 'demo_truth'),
    (select string_agg(relname, ',' order by relname) from pg_class
     where relnamespace = 'demo_truth'::regnamespace)
"""


def state(settings: Settings) -> tuple:
    """Fingerprint of everything the demo and the simulation write or drop."""
    with db.connect(settings) as conn:
        return conn.execute(STATE).fetchone()


@pytest.fixture(scope="module")
def company(make_database) -> Settings:
    """An external database holding master data and an analytics schema built from it."""
    settings = make_database("guard_company")
    loader.generate_and_load(**SMALL, settings=settings, i_mean_database="guard_company")
    with db.connect(settings) as conn:
        conn.execute("create schema analytics; create table analytics.customer_labels as select 1 as kept")
    return settings


def test_external_server_is_refused_without_the_database_name(company: Settings) -> None:
    before = state(company)

    with pytest.raises(NotAScratchDatabase) as refused:
        loader.generate_and_load(**SMALL | {"seed": 3}, settings=company)

    message = str(refused.value)
    assert message.startswith(
        "refusing to truncate master_data.customers and master_data.sales and drop every analytics* schema "
        "in the database 'guard_company' at 127.0.0.1:"
    )
    assert f"it is not the embedded PostgreSQL that custlabel runs from {company.embedded_data_dir}" in message
    assert message.endswith("Nothing was written. If it is a scratch database, name it: --i-mean-database guard_company")
    assert state(company) == before


def test_a_name_other_than_the_connected_database_is_refused(company: Settings) -> None:
    before = state(company)

    with pytest.raises(NotAScratchDatabase, match="--i-mean-database 'custlabel' does not match the database 'guard_company'"):
        loader.generate_and_load(**SMALL | {"seed": 3}, settings=company, i_mean_database="custlabel")
    assert state(company) == before


def test_simulate_is_refused_without_the_name_and_writes_nothing(company: Settings) -> None:
    before = state(company)

    with pytest.raises(NotAScratchDatabase, match="refusing to append to master_data.sales"):
        simulation.advance(company, days=1, seed=3)
    with pytest.raises(NotAScratchDatabase, match="does not match"):
        list(simulation.run(company, 1, i_mean_database="guard_companyx"))
    assert state(company) == before


def test_the_cli_refuses_then_loads_when_the_database_is_named(company: Settings) -> None:
    env = os.environ | company.connection.pg_env()
    command = [sys.executable, "-m", "custlabel.cli", "demo-data", "--customers", "100", "--days", "100", "--end-date", "2026-06-30"]
    before = state(company)

    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    assert refused.stderr.startswith("custlabel: error: refusing to truncate master_data.customers")
    assert state(company) == before

    loaded = subprocess.run([*command, "--i-mean-database", "guard_company"], env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith("demo master data: 100 customer rows")
    after = state(company)
    assert after[:2] != before[:2]
    assert after[2] == "demo_truth"  # the analytics schema built from the old data is gone


def test_a_server_on_the_embedded_port_that_is_not_ours_is_refused(warehouse_settings: Settings, tmp_path) -> None:
    """Settings that select the embedded server, but another PostgreSQL (the session's) answers on its port."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG") and name != "DATABASE_URL"}
    # It even knows the password (SCRAM on every TCP connection): only the server's identity can refuse it.
    shutil.copy(dict(warehouse_settings.connection.params)["passfile"], tmp_path / PASSFILE)
    impostor = get_settings(env | {"CUSTLABEL_LOCAL_DIR": str(tmp_path), "CUSTLABEL_PG_PORT": str(warehouse_settings.connection.port)})
    assert impostor.embedded

    with pytest.raises(NotAScratchDatabase, match="it is not the embedded PostgreSQL that custlabel runs from"):
        loader.generate_and_load(**SMALL, settings=impostor)
