"""One nightly run at a time per target: a Postgres advisory lock held for the whole run.

The lock lives in the warehouse the run writes to, so it holds across processes,
machines and Prefect deployments alike, and Postgres releases it when the holding
session ends (a killed run never leaves a stale lock behind).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from custlabel.config import Settings
from custlabel.errors import CustlabelError

APPLICATION_PREFIX = "custlabel nightly"
# pg_locks shows a one-argument advisory lock as (classid, objid) = (high, low) 32 bits, objsubid 1.
HOLDER_QUERY = """
select a.pid, a.application_name, a.backend_start
from pg_locks as l
join pg_stat_activity as a using (pid)
where l.locktype = 'advisory' and l.granted and l.objsubid = 1
  and l.database = (select oid from pg_database where datname = current_database())
  and l.classid::bigint = (hashtext(%(key)s)::bigint >> 32) & 4294967295
  and l.objid::bigint = hashtext(%(key)s)::bigint & 4294967295
"""


class RunLockedError(CustlabelError):
    """Another nightly run holds the lock of this target."""


def lock_key(schema: str) -> str:
    """The advisory lock name of a target schema."""
    return f"custlabel.nightly.{schema}"


def holder(conn: psycopg.Connection, schema: str) -> str | None:
    """Who holds the lock of a schema (its application name, pid and start), or None."""
    row = conn.execute(HOLDER_QUERY, {"key": lock_key(schema)}).fetchone()
    if row is None:
        return None
    pid, application, started = row
    return f"{application or 'a session'} (postgres pid {pid}, connected {started:%Y-%m-%d %H:%M:%S %Z})"


def _try_lock(conn: psycopg.Connection, schema: str) -> bool:
    return bool(conn.execute("select pg_try_advisory_lock(hashtext(%s))", [lock_key(schema)]).fetchone()[0])


@contextmanager
def hold(
    settings: Settings, schema: str, owner: str, wait_seconds: float = 0.0, poll_seconds: float = 1.0
) -> Iterator[None]:
    """Hold the nightly lock of a schema for the block; raise RunLockedError if another run keeps it.

    Args:
        owner: shown to a run that finds the lock taken (e.g. the flow run's name and id).
        wait_seconds: how long to wait for the lock before giving up (0: give up at once).
    """
    application = f"{APPLICATION_PREFIX} {owner}"[:63]
    with psycopg.connect(settings.connection.conninfo(), autocommit=True, application_name=application) as conn:
        deadline = time.monotonic() + wait_seconds
        while not _try_lock(conn, schema):
            if time.monotonic() >= deadline:
                raise RunLockedError(
                    f"another nightly run for {schema} is in progress: {holder(conn, schema) or 'it just ended'}; "
                    "this run stops without touching anything (one run at a time per target)"
                )
            time.sleep(poll_seconds)
        try:
            yield
        finally:
            conn.execute("select pg_advisory_unlock(hashtext(%s))", [lock_key(schema)])
