"""Connection settings: quoted conninfo, DATABASE_URL kept whole, timeouts and keepalives on every session."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import make_url

from custlabel.config import Connection, get_settings
from custlabel.errors import CustlabelError


def test_a_password_with_spaces_and_quotes_survives_the_conninfo():
    connection = Connection("db.example", 5432, "bi user", "it's a 'secret' \\ pass", "ware house")

    parsed = conninfo_to_dict(connection.conninfo())

    assert (parsed["user"], parsed["password"], parsed["dbname"]) == ("bi user", "it's a 'secret' \\ pass", "ware house")


def test_a_value_cannot_inject_another_keyword():
    parsed = conninfo_to_dict(get_settings({"PGHOST": "db.example", "PGPASSWORD": "x host=evil.example"}).connection.conninfo())

    assert parsed["host"] == "db.example"
    assert parsed["password"] == "x host=evil.example"


def test_every_session_gets_timeouts_and_keepalives():
    env = {"PGHOST": "db.example", "CUSTLABEL_PG_STATEMENT_TIMEOUT": "45min", "CUSTLABEL_PG_CONNECT_TIMEOUT": "7"}
    connection = get_settings(env).connection

    parsed = conninfo_to_dict(connection.conninfo())

    assert parsed["connect_timeout"] == "7"
    assert (parsed["keepalives"], parsed["keepalives_idle"]) == ("1", "60")
    assert parsed["options"] == "-c statement_timeout=45min -c idle_in_transaction_session_timeout=30min -c TimeZone=UTC"
    assert connection.session_env()["PGOPTIONS"] == parsed["options"]
    assert connection.session_env()["PGCONNECT_TIMEOUT"] == "7"


def test_database_url_keeps_its_query_string_and_decodes_its_parts():
    url = "postgresql://etl%20user:p%40ss%20w0rd@db.example:6543/ware%20house?sslmode=verify-full&options=-c%20search_path%3Dlabels"
    connection = get_settings({"DATABASE_URL": url}).connection

    parsed = conninfo_to_dict(connection.conninfo())

    assert (connection.user, connection.password, connection.dbname, connection.port) == (
        "etl user", "p@ss w0rd", "ware house", 6543,
    )
    assert parsed["sslmode"] == "verify-full"
    assert parsed["options"].startswith("-c search_path=labels -c statement_timeout=")
    assert connection.pg_env()["PGSSLMODE"] == "verify-full"
    assert make_url(connection.sqlalchemy_url()).query["sslmode"] == "verify-full"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "postgresql://h/db?nonsense=1"}, "DATABASE_URL cannot be read"),
        ({"DATABASE_URL": "mysql://h/db"}, "DATABASE_URL must look like postgresql://"),
        ({"PGHOST": "h", "CUSTLABEL_PG_STATEMENT_TIMEOUT": "1h -c work_mem=1TB"}, "not a duration"),
        ({"PGHOST": "h", "CUSTLABEL_BI_CONNECTION_LIMIT": "many"}, "CUSTLABEL_BI_CONNECTION_LIMIT='many' is not a whole number"),
    ],
)
def test_bad_connection_settings_are_named(env, message):
    with pytest.raises(CustlabelError, match=message):
        get_settings(env)


def test_every_session_runs_in_the_company_time_zone():
    connection = get_settings({"PGHOST": "db.example", "CUSTLABEL_TIMEZONE": "Asia/Tokyo"}).connection

    assert conninfo_to_dict(connection.conninfo())["options"].endswith("-c TimeZone=Asia/Tokyo")
    assert connection.session_env()["PGTZ"] == "Asia/Tokyo"
    with pytest.raises(CustlabelError, match="unknown time zone 'Mars/Olympus' .CUSTLABEL_TIMEZONE."):
        get_settings({"CUSTLABEL_TIMEZONE": "Mars/Olympus"})
    with pytest.raises(CustlabelError, match="PGTZ='UTC' differs from CUSTLABEL_TIMEZONE='Asia/Tokyo'"):
        get_settings({"CUSTLABEL_TIMEZONE": "Asia/Tokyo", "PGTZ": "UTC"})
