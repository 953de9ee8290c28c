"""The release log: one row per release event of a model version, in `<schema>.model_releases`, for BI.

Every step a version takes on its way to production (trained, validated,
approved, canary nights, promoted, rolled back) and every trigger that asked for
a new one is appended here, with who did it, why, and the measured figures. Rows
are never updated: the log is the history. Within a nightly run (`within_run`), an
event is appended once however often a retried step records it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.warehouse import db, locking

TABLE = "model_releases"
EVENTS = (
    "trained",
    "validated",
    "validation_failed",
    "approved",
    "rejected",
    "canary_started",
    "canary_night",
    "promoted",
    "rolled_back",
    "triggered",
    "fallback",
)

DDL = """
create schema if not exists {schema};
create table if not exists {table} (
    event_id bigint generated always as identity primary key,
    occurred_at timestamptz not null default now(),
    target text not null,
    event text not null check (event in ({events})),
    model_name text not null,
    model_version text,
    as_of_date date,
    actor text not null,
    reason text not null default '',
    details jsonb not null default '{{}}'
);
comment on table {table} is 'One row per release event of a model version (trained, validated, approved, canary, promoted, rolled back, triggered), appended by custlabel.';
"""


class UnknownReleaseEventError(CustlabelError):
    """A release event outside the documented vocabulary."""


@dataclass(frozen=True)
class ReleaseEvent:
    """One thing that happened to a model version (or, for a trigger, to the model name)."""

    event: str
    model_name: str
    model_version: str | None
    actor: str
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    as_of_date: date | None = None


def _table(settings: Settings) -> sql.Identifier:
    return sql.Identifier(settings.schema, TABLE)


def ensure_table(settings: Settings) -> None:
    """Create the release log of the settings' target schema if it does not exist."""
    events = sql.SQL(", ").join(sql.Literal(name) for name in EVENTS)
    with db.connect(settings) as conn:
        conn.execute(sql.SQL(DDL).format(schema=sql.Identifier(settings.schema), table=_table(settings), events=events))


# The nightly run recording events (its flow run id, the same on a retry), None outside a run.
_run_id: str | None = None
RUN_KEY = "run_key"


@contextmanager
def within_run(run_id: str) -> Iterator[None]:
    """Events recorded in the block belong to one run: a retried step appends each of them once."""
    global _run_id
    previous, _run_id = _run_id, run_id or None
    try:
        yield
    finally:
        _run_id = previous


def _run_key(event: ReleaseEvent) -> str | None:
    """What makes an event one run's: the run, the event, the version, and the trigger of a `triggered` one."""
    if _run_id is None:
        return None
    return "|".join([_run_id, event.event, event.model_name, event.model_version or "", str(event.details.get("trigger", ""))])


def record(settings: Settings, event: ReleaseEvent) -> int:
    """Append an event to the target's release log and return its id; within a run, an event it already recorded
    (a retried step) is not appended again: its id is returned."""
    if event.event not in EVENTS:
        raise UnknownReleaseEventError(f"unknown release event {event.event!r}: expected one of {', '.join(EVENTS)}")
    locking.check_held()
    ensure_table(settings)
    key = _run_key(event)
    details = event.details if key is None else {**event.details, RUN_KEY: key}
    with db.connect(settings) as conn:
        if key is not None:
            done = conn.execute(
                sql.SQL("select event_id from {} where details ->> %s = %s").format(_table(settings)), [RUN_KEY, key]
            ).fetchone()
            if done is not None:
                return int(done[0])
        row = conn.execute(
            sql.SQL(
                "insert into {} (target, event, model_name, model_version, as_of_date, actor, reason, details)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s) returning event_id"
            ).format(_table(settings)),
            [
                settings.target,
                event.event,
                event.model_name,
                event.model_version,
                event.as_of_date,
                event.actor,
                event.reason,
                Jsonb(details),
            ],
        ).fetchone()
    return int(row[0])


@dataclass(frozen=True)
class RecordedEvent:
    """A row of the release log."""

    event_id: int
    occurred_at: datetime
    event: str
    model_name: str
    model_version: str | None
    as_of_date: date | None
    actor: str
    reason: str
    details: dict[str, Any]


def history(settings: Settings, model_version: str | None = None, model_name: str | None = None) -> list[RecordedEvent]:
    """The target's release events, oldest first, optionally of one version."""
    with db.connect(settings) as conn:
        if not db.relation_exists(conn, settings.schema, TABLE):
            return []
        filters = [sql.SQL("true")]
        params: list[Any] = []
        if model_name is not None:
            filters.append(sql.SQL("model_name = %s"))
            params.append(model_name)
        if model_version is not None:
            filters.append(sql.SQL("model_version = %s"))
            params.append(model_version)
        rows = conn.execute(
            sql.SQL(
                "select event_id, occurred_at, event, model_name, model_version, as_of_date, actor, reason, details"
                " from {} where {} order by event_id"
            ).format(_table(settings), sql.SQL(" and ").join(filters)),
            params,
        ).fetchall()
    return [RecordedEvent(*row) for row in rows]
