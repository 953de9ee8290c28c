"""Real logins with password authentication: quoted credentials, DATABASE_URL's parameters and the session limits."""

from __future__ import annotations

import os
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from custlabel.config import get_settings
from custlabel.warehouse import db, dbt_runner

pytestmark = pytest.mark.integration

ROLE = "pw_etl"
PASSWORD = "it's a 'quoted' pass \\ host=evil.example"


@pytest.fixture(scope="module")
def etl_role(password_auth) -> dict[str, str]:
    """A login role whose password has spaces, quotes, a backslash and a keyword-looking part."""
    with db.connect(password_auth, autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(ROLE)))
        conn.execute(sql.SQL("create role {} login password {}").format(sql.Identifier(ROLE), sql.Literal(PASSWORD)))
    connection = password_auth.connection
    yield {"PGHOST": connection.host, "PGPORT": str(connection.port), "PGDATABASE": connection.dbname, "PGUSER": ROLE}
    with db.connect(password_auth, autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(ROLE)))


def settings_for(env: dict[str, str]):
    base = {key: value for key, value in os.environ.items() if not key.startswith("PG") and key != "DATABASE_URL"}
    return get_settings({**base, **env})


def test_a_password_with_spaces_and_quotes_logs_in_with_timeouts(etl_role):
    settings = settings_for({**etl_role, "PGPASSWORD": PASSWORD, "CUSTLABEL_PG_STATEMENT_TIMEOUT": "7s"})

    with db.connect(settings) as conn:
        assert conn.execute("select current_user, current_setting('statement_timeout')").fetchone() == (ROLE, "7s")
        assert conn.execute("select current_setting('idle_in_transaction_session_timeout')").fetchone() == ("30min",)
        assert conn.info.host == etl_role["PGHOST"]
    frame = db.read_frame(settings, "select current_setting('statement_timeout') as timeout")
    assert frame["timeout"].tolist() == ["7s"]


def test_a_wrong_password_is_refused(etl_role):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        db.connect(settings_for({**etl_role, "PGPASSWORD": "it's a"}))


def test_database_url_keeps_its_parameters(etl_role):
    url = (
        f"postgresql://{ROLE}:{quote(PASSWORD, safe='')}@{etl_role['PGHOST']}:{etl_role['PGPORT']}/{etl_role['PGDATABASE']}"
        "?sslmode=disable&application_name=custlabel%20url%20test"
    )
    settings = settings_for({"DATABASE_URL": url})

    with db.connect(settings) as conn:
        assert conn.execute("select current_user, current_setting('application_name')").fetchone() == (
            ROLE, "custlabel url test",
        )
        assert conn.info.get_parameters()["sslmode"] == "disable"
    frame = db.read_frame(settings, "select current_setting('application_name') as name")
    assert frame["name"].tolist() == ["custlabel url test"]


def test_dbt_sessions_get_the_password_and_the_timeouts(etl_role, tmp_path):
    env = {**etl_role, "PGPASSWORD": PASSWORD, "CUSTLABEL_PG_STATEMENT_TIMEOUT": "7s", "CUSTLABEL_LOCAL_DIR": str(tmp_path)}
    settings = settings_for(env)
    # Division by zero unless dbt's session has the configured timeout.
    check = "select 1 / (current_setting('statement_timeout') = '7s' and current_user = 'pw_etl')::int as ok"

    dbt_runner.run(settings, ["show", "--inline", check], target="test")

    with pytest.raises(dbt_runner.DbtFailure, match="division by zero"):
        dbt_runner.run(settings, ["show", "--inline", check.replace("7s", "8s")], target="test")
