"""Which failures are worth retrying: a lost connection or a lock wait, never a failed test, check or gate."""

from __future__ import annotations

import re

import psycopg

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


def is_transient(error: BaseException | None) -> bool:
    """Whether a failed step may succeed on a retry.

    A CustlabelError is a verdict (a failed dbt test, check or gate) unless it says it
    is transient; a database error is transient by its SQLSTATE; other exceptions are
    I/O trouble (network, disk, the MLflow store) and are retried.
    """
    if isinstance(error, CustlabelError):
        return bool(getattr(error, "transient", False))
    if isinstance(error, psycopg.Error):
        return _is_transient_database_error(error)
    cause = getattr(error, "orig", None)  # SQLAlchemy wraps the driver's error
    if isinstance(cause, psycopg.Error):
        return _is_transient_database_error(cause)
    return True
