"""One nightly run at a time per target: a Postgres advisory lock held for the whole run.

The lock lives in the warehouse the run writes to, so it holds across processes,
machines and Prefect deployments alike, and Postgres releases it when the holding
session ends (a killed run never leaves a stale lock behind).

The lock's session can drop during a run (network, server restart, an administrator's
pg_terminate_backend): Postgres then releases the lock. A heartbeat notices the drop
within `lock_heartbeat_seconds` and takes the lock again on a new session, logging a
warning; if another run took it meanwhile, it logs an error naming that run and the
lock counts as lost. A run that lost its lock stops before its next write
(`check_held`, called by every writer of the run: its steps, the release log, the
registry's aliases and tags, the publish) with LockLostError naming the run that took it. Either way, the end of a run
that succeeded never fails on the unlock: a dropped session has already released its lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from custlabel.config import Settings
from custlabel.errors import CustlabelError

logger = logging.getLogger(__name__)

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


class LockLostError(CustlabelError):
    """This run's lock was taken by another run after its lock session dropped: it must not write again."""


def lock_key(schema: str) -> str:
    """The advisory lock name of a target schema."""
    return f"custlabel.nightly.night_steps.{schema}"


def holder(conn: psycopg.Connection, schema: str) -> str | None:
    """Who holds the lock of a schema (its application name, pid and start), or None."""
    row = conn.execute(HOLDER_QUERY, {"key": lock_key(schema)}).fetchone()
    if row is None:
        return None
    pid, application, started = row
    return f"{application or 'a session'} (postgres pid {pid}, connected {started:%Y-%m-%d %H:%M:%S %Z})"


def _try_lock(conn: psycopg.Connection, schema: str) -> bool:
    return bool(conn.execute("select pg_try_advisory_lock(hashtext(%s))", [lock_key(schema)]).fetchone()[0])


class HeldLock:
    """The lock's session, watched by a heartbeat that takes the lock again after a drop."""

    def __init__(self, settings: Settings, schema: str, application: str) -> None:
        self.settings = settings
        self.schema = schema
        self.application = application
        self.conn = self._connect()
        self.lost = False
        self.taken_by: str | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._session = threading.Lock()  # the heartbeat and check() share the lock's session

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.settings.connection.conninfo(), autocommit=True, application_name=self.application)

    def start_heartbeat(self) -> None:
        self._heartbeat = threading.Thread(target=self._beat, name=f"lock heartbeat {self.schema}", daemon=True)
        self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.settings.lock_heartbeat_seconds):
            if self.lost:
                return
            self._probe()

    def _probe(self) -> None:
        with self._session:
            if self.lost:
                return
            try:
                self.conn.execute("select 1")
            except psycopg.OperationalError as error:
                logger.warning("the lock session of %s dropped (%s); taking the lock again", self.schema, str(error).strip())
                self._take_again()

    def check(self) -> None:
        """Raise LockLostError unless this run still holds its lock (taken again at once after a dropped session)."""
        self._probe()
        if self.lost:
            raise LockLostError(
                f"this run lost the nightly lock of {self.schema} to {self.taken_by or 'another run'} and stops before"
                " its next write; the other run carries on (start this one again once it has finished)"
            )

    def _take_again(self) -> None:
        try:
            self.conn.close()
            self.conn = self._connect()
            if _try_lock(self.conn, self.schema):
                logger.warning("nightly lock of %s taken again on a new session", self.schema)
                return
            self.taken_by = holder(self.conn, self.schema) or "another run"
            logger.error(
                "nightly lock of %s lost: %s took it after this run's lock session dropped; this run stops before its"
                " next write", self.schema, self.taken_by,
            )
            self.lost = True
        except psycopg.OperationalError as error:
            logger.warning("cannot reach the warehouse to take the lock of %s again (%s); retrying", self.schema, error)

    def release(self) -> None:
        """Stop the heartbeat and unlock; a dropped session has released the lock already."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        try:
            if not self.lost:
                self.conn.execute("select pg_advisory_unlock(hashtext(%s))", [lock_key(self.schema)])
        except psycopg.OperationalError as error:
            logger.warning(
                "the lock session of %s dropped before the unlock (%s); Postgres released the lock with it",
                self.schema, str(error).strip(),
            )
        finally:
            self.conn.close()


# The locks this process holds now (one per running nightly run).
_held: list[HeldLock] = []


@contextmanager
def hold(
    settings: Settings, schema: str, owner: str, wait_seconds: float = 0.0, poll_seconds: float = 1.0
) -> Iterator[HeldLock]:
    """Hold the nightly lock of a schema for the block; raise RunLockedError if another run keeps it.

    Args:
        owner: shown to a run that finds the lock taken (e.g. the flow run's name and id).
        wait_seconds: how long to wait for the lock before giving up (0: give up at once).
    """
    lock = HeldLock(settings, schema, f"{APPLICATION_PREFIX} {owner}"[:63])
    try:
        deadline = time.monotonic() + wait_seconds
        while not _try_lock(lock.conn, schema):
            if time.monotonic() >= deadline:
                raise RunLockedError(
                    f"another nightly run for {schema} is in progress: {holder(lock.conn, schema) or 'it just ended'}; "
                    "this run stops without touching anything (one run at a time per target)"
                )
            time.sleep(poll_seconds)
    except BaseException:
        lock.conn.close()
        raise
    lock.start_heartbeat()
    _held.append(lock)
    try:
        yield lock
    finally:
        _held.remove(lock)
        lock.release()


def check_held() -> None:
    """Before a write of a nightly run: raise LockLostError if a lock this process holds was lost (no-op outside a run)."""
    for lock in list(_held):
        lock.check()
