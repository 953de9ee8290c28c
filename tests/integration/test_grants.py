"""The BI role reads the label tables and the monitoring marts, and nothing else."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from custlabel.config import Settings, monitoring_schema
from custlabel.devtools.benchmarks.scoring import create_synthetic_features
from custlabel.errors import CustlabelError
from custlabel.scoring import grants, score, sql_scoring
from custlabel.warehouse import db
from helpers.scoring import create_synthetic_rule_baseline

pytestmark = pytest.mark.integration

SCHEMA = "analytics_test"
MONITORING = monitoring_schema(SCHEMA)
PASSWORD = "bi's 'long' pass phrase"


def rule_night(settings: Settings) -> None:
    score.score(settings, score.ScoreRequest("analytics_test", force=True), score.GivenModels(), sql_scoring.MemoryParityStore())


def with_bi(settings: Settings, **changes) -> Settings:
    """Settings with other BI role settings (as CUSTLABEL_BI_* would give)."""
    return dataclasses.replace(settings, bi_role=dataclasses.replace(settings.bi_role, **changes))


def login(settings: Settings, role: str, password: str) -> psycopg.Connection:
    """Log in the way a BI tool does: address and password only (the test server asks for it), no session options."""
    address = settings.connection
    return psycopg.connect(
        host=address.host, port=address.port, dbname=address.dbname, user=role, password=password, autocommit=True
    )


def drop_role(settings: Settings, role: str) -> None:
    with db.connect(settings, autocommit=True) as conn:
        if conn.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone():
            conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


@pytest.fixture(scope="module")
def warehouse(make_database, password_auth) -> Settings:
    """Master data, features, tonight's labels, then `custlabel grants`, then a monitoring mart built later."""
    settings = with_bi(make_database("grants_it"), password=PASSWORD)
    drop_role(settings, grants.BI_ROLE)
    with db.connect(settings) as conn:
        conn.execute("create schema master_data")
        conn.execute("create table master_data.customers as select 'C1'::text as customer_id, 'secret'::text as gender")
        create_synthetic_features(conn, SCHEMA, 50, [dt.date(2026, 6, 1)])
        create_synthetic_rule_baseline(conn, SCHEMA)
    rule_night(settings)
    done = grants.grant_bi_access(settings, target="test")
    assert any("customer_labels" in line for line in done)
    assert "checked: custlabel_bi cannot read master_data" in done
    with db.connect(settings) as conn:
        conn.execute(sql.SQL("create table {} as select 0.1::float8 as psi").format(sql.Identifier(MONITORING, "feature_drift")))
    return settings


@pytest.fixture()
def bi(warehouse):
    """A connection as the BI role, the way a BI tool logs in."""
    with login(warehouse, grants.BI_ROLE, PASSWORD) as conn:
        yield conn


@pytest.mark.parametrize(
    "query",
    [
        f"select count(*) from {SCHEMA}.customer_labels where label = 'bad'",
        f"select count(*) from {SCHEMA}.customer_label_history",
        f"select psi from {MONITORING}.feature_drift",
    ],
)
def test_bi_can_read_labels_and_monitoring(bi, query):
    assert bi.execute(query).fetchone() is not None


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("select * from master_data.customers", psycopg.errors.InsufficientPrivilege),
        (f"select * from {SCHEMA}.customer_features", psycopg.errors.InsufficientPrivilege),
        (f"select * from {SCHEMA}.rule_baseline_scores", psycopg.errors.InsufficientPrivilege),
        (f"insert into {SCHEMA}.customer_labels (customer_id) values ('x')", psycopg.errors.ReadOnlySqlTransaction),
        (f"delete from {SCHEMA}.customer_labels", psycopg.errors.ReadOnlySqlTransaction),
        (f"create table {SCHEMA}.mine (x int)", psycopg.errors.ReadOnlySqlTransaction),
        ("create temp table mine (x int)", psycopg.errors.ReadOnlySqlTransaction),
    ],
)
def test_bi_is_refused_everything_else(bi, statement, error):
    with pytest.raises(error):
        bi.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        f"insert into {SCHEMA}.customer_labels (customer_id) values ('x')",
        f"update {SCHEMA}.customer_label_history set label = 'good'",
        f"truncate {SCHEMA}.customer_labels",
        f"create table {SCHEMA}.mine (x int)",
        f"create table {MONITORING}.mine (x int)",
        "create table public.mine (x int)",
        "create schema mine",
    ],
)
def test_writes_are_refused_by_privilege_too(bi, statement):
    """Even with read-only sessions switched off, the role holds no write privilege."""
    bi.execute("set default_transaction_read_only = off")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        bi.execute(statement)


def test_bi_keeps_reading_after_the_nightly_swap(warehouse, bi):
    rule_night(warehouse)
    assert bi.execute(f"select count(*) from {SCHEMA}.customer_labels").fetchone() == (50,)


def test_grants_refuse_to_leave_master_data_open_to_public(warehouse):
    with db.connect(warehouse) as conn:
        conn.execute("grant usage on schema master_data to public")
        conn.execute("grant select on master_data.customers to public")
    try:
        with pytest.raises(CustlabelError, match="custlabel_bi can still read 1 master_data tables through grants to PUBLIC"):
            grants.grant_bi_access(warehouse, target="test")
    finally:
        with db.connect(warehouse) as conn:
            conn.execute("revoke select on master_data.customers from public")
            conn.execute("revoke usage on schema master_data from public")


def test_the_role_has_a_statement_timeout_and_a_connection_limit(warehouse, bi):
    assert bi.execute("show statement_timeout").fetchone() == ("10min",)
    assert bi.execute("show idle_in_transaction_session_timeout").fetchone() == ("5min",)
    with db.connect(warehouse) as conn:
        assert conn.execute("select rolconnlimit from pg_roles where rolname = %s", [grants.BI_ROLE]).fetchone() == (20,)


def test_the_connection_limit_is_configurable_and_enforced(warehouse):
    grants.grant_bi_access(with_bi(warehouse, connection_limit=2, statement_timeout="30s"), target="test")
    try:
        with login(warehouse, grants.BI_ROLE, PASSWORD) as first, login(warehouse, grants.BI_ROLE, PASSWORD):
            assert first.execute("show statement_timeout").fetchone() == ("30s",)
            with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
                login(warehouse, grants.BI_ROLE, PASSWORD)
    finally:
        grants.grant_bi_access(warehouse, target="test")


def test_a_rerun_keeps_the_password_unless_asked_to_reset_it(warehouse):
    done = grants.grant_bi_access(with_bi(warehouse, password="a newer pass"), target="test")
    assert "role custlabel_bi: login, password kept (--reset-password to change it)" in done
    login(warehouse, grants.BI_ROLE, PASSWORD).close()
    try:
        grants.grant_bi_access(with_bi(warehouse, password="a newer pass"), target="test", reset_password=True)
        login(warehouse, grants.BI_ROLE, "a newer pass").close()
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            login(warehouse, grants.BI_ROLE, PASSWORD)
    finally:
        grants.grant_bi_access(warehouse, target="test", reset_password=True)


def test_off_the_embedded_server_the_demo_password_is_refused_and_one_is_required(warehouse):
    role = "pw_demo_bi"
    drop_role(warehouse, role)
    with pytest.raises(CustlabelError, match="demo password 'custlabel_bi' is refused off the embedded server"):
        grants.grant_bi_access(with_bi(warehouse, password=grants.DEMO_PASSWORD), target="test", role=role)
    with pytest.raises(CustlabelError, match="needs a password on this server: set CUSTLABEL_BI_PASSWORD"):
        grants.grant_bi_access(with_bi(warehouse, password=None), target="test", role=role)
    with db.connect(warehouse) as conn:
        assert conn.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone() is None
    asked = []
    try:
        grants.grant_bi_access(
            with_bi(warehouse, password=None), target="test", role=role, prompt=lambda text: asked.append(text) or "typed in"
        )
        assert asked == [f"password for the BI role {role}: "]
        with login(warehouse, role, "typed in") as conn:
            assert conn.execute("select count(*) from analytics_test.customer_labels").fetchone()[0] > 0
    finally:
        drop_role(warehouse, role)


def test_a_role_the_tool_did_not_create_is_left_alone(warehouse):
    role = "pw_finance"
    drop_role(warehouse, role)
    with db.connect(warehouse) as conn:
        conn.execute(sql.SQL("create role {} login createdb password 'finance pass'").format(sql.Identifier(role)))
    try:
        with pytest.raises(CustlabelError, match="role pw_finance exists and was not created by custlabel grants"):
            grants.grant_bi_access(warehouse, target="test", role=role, reset_password=True)
        with db.connect(warehouse) as conn:
            assert conn.execute("select rolcreatedb, rolconfig from pg_roles where rolname = %s", [role]).fetchone() == (True, None)
        login(warehouse, role, "finance pass").close()
    finally:
        drop_role(warehouse, role)


def test_grants_refuse_to_leave_a_schema_open_for_create_through_public(warehouse):
    with db.connect(warehouse) as conn:
        conn.execute("grant create on schema public to public")
    try:
        with pytest.raises(CustlabelError, match=r"custlabel_bi could still create objects \(schema public\)"):
            grants.grant_bi_access(warehouse, target="test")
    finally:
        with db.connect(warehouse) as conn:
            conn.execute("revoke create on schema public from public")


def test_the_nightly_grants_the_demo_role_on_the_embedded_server_only(warehouse):
    assert grants.ensure_for_nightly(with_bi(warehouse, password=None), SCHEMA) == []
    embedded = dataclasses.replace(with_bi(warehouse, password=None), embedded=True)
    role = "pw_demo_embedded"
    drop_role(warehouse, role)
    try:
        grants.grant_bi_access(embedded, target="test", role=role)
        with login(warehouse, role, grants.DEMO_PASSWORD) as conn:
            assert conn.execute(f"select count(*) from {SCHEMA}.customer_labels").fetchone()[0] > 0
        done = grants.ensure_for_nightly(embedded, SCHEMA)
        assert "role custlabel_bi: login, password kept (--reset-password to change it)" in done
    finally:
        drop_role(warehouse, role)


def test_temp_is_revoked_from_the_bi_role_only_and_public_keeps_what_the_server_gave(warehouse):
    role = "pw_analyst_later"
    drop_role(warehouse, role)
    with db.connect(warehouse) as conn:
        public_before = conn.execute("select has_database_privilege('public', current_database(), 'temp')").fetchone()[0]
        conn.execute(sql.SQL("grant temp on database {} to {}").format(sql.Identifier(warehouse.connection.dbname),
                                                                       sql.Identifier(grants.BI_ROLE)))
    done = grants.grant_bi_access(warehouse, target="test")
    try:
        with db.connect(warehouse) as conn:
            conn.execute(sql.SQL("create role {} login password 'later pass'").format(sql.Identifier(role)))
            public_after = conn.execute("select has_database_privilege('public', current_database(), 'temp')").fetchone()[0]
            bi_own = conn.execute(
                "select count(*) from pg_database, aclexplode(datacl) as acl where datname = current_database()"
                " and acl.grantee = %s::regrole and acl.privilege_type = 'TEMPORARY'", [grants.BI_ROLE]
            ).fetchone()[0]
        with login(warehouse, role, "later pass") as later:
            later.execute("create temp table scratch (x int)")  # a role created after the grants keeps temp tables
        assert public_before and public_after
        assert bi_own == 0
        assert any(line.startswith("TEMP on database grants_it revoked from custlabel_bi; PUBLIC still grants it") for line in done)
    finally:
        drop_role(warehouse, role)


def test_the_bi_password_reaches_the_server_already_hashed(warehouse):
    secret = "a pass phrase the server must never see 7319"
    logging = dataclasses.replace(warehouse.connection, params=(("options", "-c log_statement=all"),))
    with db.connect(warehouse) as conn:
        log_file = Path(conn.execute("show data_directory").fetchone()[0]).parent / "pg.log"
    written = log_file.stat().st_size
    grants.grant_bi_access(dataclasses.replace(warehouse, connection=logging), target="test", password=secret,
                           reset_password=True)
    try:
        logged = log_file.read_bytes()[written:].decode(errors="replace")
        assert "alter role" in logged.lower() and "SCRAM-SHA-256$4096:" in logged
        assert secret not in logged
        with login(warehouse, grants.BI_ROLE, secret) as conn:
            assert conn.execute("select current_user").fetchone() == (grants.BI_ROLE,)
    finally:
        grants.grant_bi_access(warehouse, target="test", password=PASSWORD, reset_password=True)
