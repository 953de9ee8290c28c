"""Connection settings: quoted conninfo, DATABASE_URL kept whole, timeouts and keepalives on every session."""

from __future__ import annotations

import re

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
        ({"DATABASE_URL": "mysql://u:pw@h/db"}, "DATABASE_URL has the scheme 'mysql': custlabel needs a PostgreSQL URL"),
        ({"DATABASE_URL": "db.example:5432/ware"}, "DATABASE_URL is not a URL: custlabel needs a PostgreSQL URL"),
        ({"DATABASE_URL": "postgresql://u:pw@db1:5432,db2:5432/ware"},
         r"DATABASE_URL names several servers \(db1,db2\): custlabel writes to one.*name the primary alone"),
        ({"DATABASE_URL": "postgresql://u:pw@db1,db2/ware?target_session_attrs=read-write"}, "names several servers"),
        ({"PGHOST": "h", "CUSTLABEL_STEP_TIMEOUT_SECONDS": "0"}, "CUSTLABEL_STEP_TIMEOUT_SECONDS='0': a timeout must be a positive"),
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


def test_the_operators_pgoptions_and_connect_timeout_are_merged_with_ours():
    env = {"PGHOST": "db.example", "PGOPTIONS": "-c search_path=labels -c statement_timeout=5min", "PGCONNECT_TIMEOUT": "25"}
    connection = get_settings(env).connection

    parsed = conninfo_to_dict(connection.conninfo())

    assert parsed["options"] == (
        "-c statement_timeout=2h -c idle_in_transaction_session_timeout=30min -c search_path=labels -c statement_timeout=5min"
        " -c TimeZone=UTC"
    )
    assert parsed["connect_timeout"] == "25"
    assert connection.session_env()["PGOPTIONS"] == parsed["options"]
    assert connection.session_env()["PGCONNECT_TIMEOUT"] == "25"
    assert get_settings({**env, "CUSTLABEL_PG_CONNECT_TIMEOUT": "7"}).connection.parameters()["connect_timeout"] == "7"


def test_step_and_child_process_timeouts_are_generous_by_default_and_configurable():
    default = get_settings({"PGHOST": "h"}).step_timeouts
    assert (default.step_seconds, default.train_seconds, default.smoke_seconds) == (10800, 21600, 1800)
    assert get_settings({"PGHOST": "h", "CUSTLABEL_SMOKE_TIMEOUT_SECONDS": "90"}).step_timeouts.smoke_seconds == 90


def test_the_reviewed_files_and_the_search_size_are_the_operators_to_choose(tmp_path):
    shipped = get_settings({})
    assert (shipped.release_file, shipped.alerts_file, shipped.acceptance_file) == tuple(
        shipped.project_dir / name for name in ("release.yml", "alerts.yml", "acceptance.yml"))
    assert shipped.search.overrides() == {} and not shipped.auto_approve

    chosen = get_settings({
        "CUSTLABEL_RELEASE_FILE": str(tmp_path / "release.yml"), "CUSTLABEL_ALERTS_FILE": str(tmp_path / "alerts.yml"),
        "CUSTLABEL_ACCEPTANCE_FILE": str(tmp_path / "acceptance.yml"), "CUSTLABEL_SEARCH_ITERATIONS": "1",
        "CUSTLABEL_SEARCH_CANDIDATES": "logistic_regression, random_forest", "CUSTLABEL_AUTO_APPROVE": "1",
    })
    assert (chosen.release_file, chosen.alerts_file, chosen.acceptance_file) == tuple(
        tmp_path / name for name in ("release.yml", "alerts.yml", "acceptance.yml"))
    assert chosen.search.overrides() == {"search_iterations": 1, "candidates": ("logistic_regression", "random_forest")}
    assert chosen.auto_approve


@pytest.mark.parametrize(("env", "message"), [
    ({"CUSTLABEL_SEARCH_ITERATIONS": "0"}, "CUSTLABEL_SEARCH_ITERATIONS='0': the search needs at least 1"),
    ({"CUSTLABEL_SEARCH_JOBS": "two"}, "CUSTLABEL_SEARCH_JOBS='two' is not a whole number"),
    ({"CUSTLABEL_AUTO_APPROVE": "please"}, "CUSTLABEL_AUTO_APPROVE='please' is not a switch: use 1 or 0"),
])
def test_a_bad_night_setting_is_named(env, message):
    with pytest.raises(CustlabelError, match=re.escape(message)):
        get_settings(env)
