"""Which failures the nightly flow retries, and the dbt vars that may reach SQL."""

from __future__ import annotations

import datetime as dt
import sqlite3

import psycopg
import pytest
import sqlalchemy.exc
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from prefect.states import Failed

from custlabel import cli
from custlabel.config import DEFAULT_PROJECT_DIR
from custlabel.errors import CustlabelError
from custlabel.nightly import night_steps
from custlabel.warehouse import retry
from custlabel.warehouse.dbt_runner import DbtFailure, checked_vars


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (DbtFailure("dbt build failed: Database Error: connection refused", transient=True), True),
        (DbtFailure("dbt build failed: not_null_customers_customer_id: Got 1 result"), False),
        (psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"), True),
        (psycopg.errors.SerializationFailure("could not serialize access"), True),
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),
        (psycopg.errors.UndefinedTable('relation "x" does not exist'), False),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), False),
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (ConnectionResetError("Connection reset by peer"), True),
        (MlflowException("(sqlite3.OperationalError) database is locked"), True),
        (sqlalchemy.exc.OperationalError("insert", {}, sqlite3.OperationalError("database is locked")), True),
        (MlflowException("Invalid value 'x' for parameter 'version'", error_code=INVALID_PARAMETER_VALUE), False),
        (KeyError("customer_id"), False),
        (TypeError("score() got an unexpected keyword argument"), False),
        (MemoryError(), False),
        (TimeoutError("Task run exceeded timeout of 10800.0 seconds"), False),
        (OSError(28, "No space left on device"), False),
    ],
)
def test_lost_connections_and_lock_waits_are_retried_verdicts_are_not(error, retried):
    assert night_steps.is_transient(None, None, Failed(data=error)) is retried


@pytest.mark.parametrize(
    ("text", "transient"),
    [
        ('connection to server at "127.0.0.1", port 1 failed: Connection refused', True),
        ("terminating connection due to administrator command\nserver closed the connection unexpectedly", True),
        ("could not serialize access due to concurrent update", True),
        ("canceling statement due to lock timeout", True),
        ('relation "analytics.customer_features" does not exist', False),
        ("Got 3 results, configured to fail if != 0", False),
        ("Compilation Error in model customer_features", False),
    ],
)
def test_dbt_messages_are_classified(text, transient):
    assert retry.is_transient_message(text) is transient


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"as_of_date": "2026-06-30' or 1=1 --"}, "as_of_date must be a date written YYYY-MM-DD"),
        ({"as_of_date": "2026-02-30"}, "as_of_date must be a date written YYYY-MM-DD, got '2026-02-30'"),
        ({"as_of_date": dt.datetime(2026, 6, 30, 12)}, "not a timestamp"),
        ({"outcome_window_days": "90); drop table x; --"}, "dbt var outcome_window_days must be a number"),
        ({"outcome_window_days": True}, "must be a number"),
        ({"search_path": 1}, "unknown dbt var 'search_path'"),
        ({"training_nights_every": "day"}, "dbt var training_nights_every must be one of month, week, got 'day'"),
        ({"full_checks": "sometimes"}, "dbt var full_checks must be one of always, weekly, got 'sometimes'"),
    ],
)
def test_dbt_vars_are_checked_before_they_reach_sql(variables, message):
    with pytest.raises(CustlabelError, match=message):
        checked_vars(variables, DEFAULT_PROJECT_DIR)


def test_good_dbt_vars_pass_as_plain_values():
    variables = {"as_of_date": dt.date(2026, 6, 30), "outcome_window_days": 60, "max_quarantine_rate": 0.05,
                 "training_nights_every": "week", "full_checks": "always"}
    assert checked_vars(variables, DEFAULT_PROJECT_DIR) == {
        "as_of_date": "2026-06-30", "outcome_window_days": 60, "max_quarantine_rate": 0.05, "training_nights_every": "week",
        "full_checks": "always",
    }


def test_the_dbt_command_refuses_a_night_that_is_not_a_date(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["dbt", "--as-of", "today'; drop schema analytics cascade; --", "build"])
    assert "--as-of must be a date written YYYY-MM-DD" in capsys.readouterr().err
    assert cli.build_parser().parse_args(["dbt", "--as-of", "2026-06-30", "build"]).as_of == dt.date(2026, 6, 30)
