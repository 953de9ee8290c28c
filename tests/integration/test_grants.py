"""The BI role reads the label tables and the monitoring marts, and nothing else."""

from __future__ import annotations

import dataclasses
import datetime as dt

import psycopg
import pytest
from psycopg import sql

from custlabel import db, grants, score, sql_scoring
from custlabel.devtools.benchmarks.scoring import create_synthetic_features
from custlabel.config import Settings
from custlabel.errors import CustlabelError

from helpers.scoring import create_synthetic_rule_baseline

pytestmark = pytest.mark.integration

SCHEMA = "analytics_test"
MONITORING = grants.monitoring_schema(SCHEMA)


def rule_night(settings: Settings) -> None:
    score.score(settings, score.ScoreRequest("analytics_test", force=True), score.GivenModels(), sql_scoring.MemoryParityStore())


@pytest.fixture(scope="module")
def warehouse(make_database) -> Settings:
    """Master data, features, tonight's labels, then `custlabel grants`, then a monitoring mart built later."""
    settings = make_database("grants_it")
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
    connection = dataclasses.replace(warehouse.connection, user=grants.BI_ROLE, password=grants.DEFAULT_BI_PASSWORD)
    with psycopg.connect(connection.conninfo(), autocommit=True) as conn:
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
