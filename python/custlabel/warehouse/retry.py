"""Which failures are worth retrying: a lost connection or a lock wait, never a failed test, check or gate."""

from __future__ import annotations

import re
import sqlite3

import psycopg
import sqlalchemy.exc
from mlflow.exceptions import MlflowException

from custlabel.errors import CustlabelError

# SQLSTATE classes: 08 connection exception, 40 transaction rollback (serialization
# failure, deadlock), 53 insufficient resources (too many connections).
TRANSIENT_SQLSTATE_CLASSES = {"08", "40", "53"}
# lock_not_available (lock_timeout), admin_shutdown (pg_terminate_backend), crash_shutdown, cannot_connect_now.
TRANSIENT_SQLSTATES = {"55P03", "57P01", "57P02", "57P03"}
# The same failures as libpq and the server word them, for errors that only carry text (dbt's).
TRANSIENT_MESSAGES = re.compile(
    "|".join(
        [
            r"connection refused",
            r"connection reset",
            r"connection timed out",
            r"timeout expired",
            r"could not connect",
            r"could not (receive|send) data",
            r"connection to server .* failed",
            r"server closed the connection unexpectedly",
            r"terminating connection",
            r"no connection to the server",
            r"connection already closed",
            r"SSL SYSCALL error",
            r"SSL connection has been closed unexpectedly",
            r"the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)",
            r"too many clients already",
            r"remaining connection slots are reserved",
            r"canceling statement due to lock timeout",
            r"could not obtain lock",
            r"could not serialize access",
            r"deadlock detected",
        ]
    ),
    re.IGNORECASE,
)


def is_transient_message(text: str) -> bool:
    """Whether an error's text describes a lost connection, a lock wait or a serialization conflict."""
    return bool(TRANSIENT_MESSAGES.search(text))


def _is_transient_database_error(error: psycopg.Error) -> bool:
    state = error.sqlstate
    if state is None:
        # Raised by libpq itself: the server could not be reached or the connection broke.
        return isinstance(error, psycopg.OperationalError)
    return state[:2] in TRANSIENT_SQLSTATE_CLASSES or state in TRANSIENT_SQLSTATES


# The MLflow store is busy: its SQLite database is locked by another writer, or its server is overloaded.
MLFLOW_BUSY = re.compile(r"database is locked|database table is locked|too many requests|503 Server Error", re.IGNORECASE)


def _mlflow_busy(error: BaseException) -> bool:
    return isinstance(error, (MlflowException, sqlalchemy.exc.OperationalError, sqlite3.OperationalError)) and bool(
        MLFLOW_BUSY.search(str(error))
    )


def is_transient(error: BaseException | None) -> bool:
    """Whether a failed step may succeed on a retry: only the declared transient failures.

    A lost connection (a database error of SQLSTATE class 08, libpq's own, or the
    network's ConnectionError), a serialization failure or deadlock (class 40), a lock
    timeout (55P03), a server going down or too busy (57P0x, class 53), the MLflow store
    busy, and a CustlabelError that says it is transient. Anything else (a failed check,
    a programming error, MemoryError, a timeout that stopped a hung step) is not retried.
    """
    if error is None:
        return False
    if isinstance(error, CustlabelError):
        return bool(getattr(error, "transient", False))
    if isinstance(error, psycopg.Error):
        return _is_transient_database_error(error)
    cause = getattr(error, "orig", None)  # SQLAlchemy wraps the driver's error
    if isinstance(cause, psycopg.Error):
        return _is_transient_database_error(cause)
    return isinstance(error, ConnectionError) or _mlflow_busy(error)
