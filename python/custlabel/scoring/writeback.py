"""The label tables BI reads: written aside, checked, swapped in one transaction.

All of a night happens in one transaction of the caller's connection: the staging
table is created and filled, checked, tonight's history rows are replaced, and the
staging table takes the place of `customer_labels`. A run that fails or is killed
before its commit leaves yesterday's table and history exactly as they were.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from custlabel.config import SwapWait
from custlabel.errors import CustlabelError
from custlabel.training import threshold_cut
from custlabel.warehouse.db import relation_exists

logger = logging.getLogger(__name__)

LABELS = "customer_labels"
HISTORY = "customer_label_history"
STAGING = "customer_labels__staging"
DEFAULT_MAX_LABEL_RATE_CHANGE = 0.10
# Sessions that hold a lock on a table, for the message of a swap that waited too long.
LOCK_HOLDERS_QUERY = """
select a.pid, a.usename, a.application_name, a.query_start, a.state, left(a.query, 120)
from pg_locks as l join pg_stat_activity as a using (pid)
where l.relation = to_regclass(%s) and l.granted and l.pid <> pg_backend_pid()
order by a.query_start
"""

# (name, type, comment): the columns of both label tables; COPY sends all but scored_at.
COLUMNS: list[tuple[str, str, str]] = [
    ("customer_id", "text not null", "The customer (master data id)."),
    ("label", "text not null check (label in ('good', 'bad'))", "'bad' when score >= threshold, else 'good'."),
    ("score", "double precision not null check (score between 0 and 1)", "Probability of 'bad' (the rule baseline: its points)."),
    ("threshold", "double precision", "The model's operating point: 'bad' when score >= threshold."),
    ("model_name", "text not null", "Registered model that labelled the row, or 'rule-baseline'."),
    ("model_version", "text not null", "Version of that model (canary rows carry the challenger's)."),
    ("as_of_date", "date not null", "The night the features describe."),
    ("scored_at", "timestamptz not null default now()", "When the scoring transaction ran."),
    ("reason_1", "text", "Strongest reason pushing this customer toward 'bad' (null when none)."),
    ("reason_2", "text", "Second reason toward 'bad'."),
    ("reason_3", "text", "Third reason toward 'bad'."),
]
COPY_COLUMNS = [name for name, _, _ in COLUMNS if name != "scored_at"]


class WriteBackError(CustlabelError):
    """Tonight's labels failed a check; yesterday's table is left in place."""


@dataclass(frozen=True)
class CheckResult:
    rows: int
    bad_rate: float
    previous_bad_rate: float | None
    previous_as_of_date: dt.date | None


def _ident(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name)


def _create_table(conn: psycopg.Connection, schema: str, name: str, key: list[str] | None) -> None:
    columns = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t, _ in COLUMNS]
    if key:
        columns.append(sql.SQL("primary key ({})").format(sql.SQL(", ").join(map(sql.Identifier, key))))
    conn.execute(
        sql.SQL("create table if not exists {} ({})").format(_ident(schema, name), sql.SQL(", ").join(columns))
    )
    for column, _, comment in COLUMNS:
        conn.execute(
            sql.SQL("comment on column {} is {}").format(sql.Identifier(schema, name, column), sql.Literal(comment))
        )


def ensure_history(conn: psycopg.Connection, schema: str) -> None:
    """Create the schema and the history table when missing."""
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    # (as_of_date, customer_id): the nightly replace deletes by date; joins use both columns.
    _create_table(conn, schema, HISTORY, ["as_of_date", "customer_id"])
    conn.execute(
        sql.SQL("comment on table {} is {}").format(
            _ident(schema, HISTORY), sql.Literal("Every night's customer labels, one row per (customer_id, as_of_date).")
        )
    )


def lock_key(schema: str) -> str:
    """The advisory lock that serializes the scoring transactions of a schema."""
    return f"custlabel.scoring.score.{schema}"


def begin_night(conn: psycopg.Connection, schema: str) -> sql.Identifier:
    """Serialize runs on this schema, make sure the history exists, and create an empty staging table."""
    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", [lock_key(schema)])
    ensure_history(conn, schema)
    conn.execute(sql.SQL("drop table if exists {}").format(_ident(schema, STAGING)))
    _create_table(conn, schema, STAGING, None)
    return _ident(schema, STAGING)


@contextmanager
def copy_into_staging(conn: psycopg.Connection, schema: str) -> Iterator[psycopg.Copy]:
    """A COPY ... FROM STDIN (csv) into the staging table, columns in COPY_COLUMNS order."""
    statement = sql.SQL("copy {} ({}) from stdin (format csv)").format(
        _ident(schema, STAGING), sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
    )
    with conn.cursor().copy(statement) as copy:
        yield copy


def insert_labels(
    conn: psycopg.Connection, schema: str, name: str, version: str, threshold: float, scored: sql.Composable
) -> int:
    """Label the rows of a query (customer_id, as_of_date, score, reason_1..3) at a threshold into staging."""
    limit = sql.Literal(float(threshold))
    statement = sql.SQL(
        "insert into {staging} ({columns}) select customer_id, {label}, score, {limit}, {name}, {version},"
        " as_of_date, reason_1, reason_2, reason_3 from ({scored}) as scored"
    ).format(
        staging=_ident(schema, STAGING),
        columns=sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS)),
        label=threshold_cut.label_sql(sql.SQL("score"), limit),
        limit=limit,
        name=sql.Literal(name),
        version=sql.Literal(str(version)),
        scored=scored,
    )
    return conn.execute(statement).rowcount


def _previous_night(conn: psycopg.Connection, schema: str, as_of_date: dt.date) -> tuple[dt.date | None, float | None]:
    row = conn.execute(
        sql.SQL(
            "select as_of_date, avg((label = 'bad')::int)::float8 from {h}"
            " where as_of_date = (select max(as_of_date) from {h} where as_of_date < %s) group by as_of_date"
        ).format(h=_ident(schema, HISTORY)),
        [as_of_date],
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


@dataclass(frozen=True)
class NightFigures:
    """What the checks read of a night's labels written aside, on any engine."""

    rows: int
    null_labels: int
    nights: int
    bad_rate: float


def judge_night(figures: NightFigures, expected_rows: int, max_bad_share: float) -> None:
    """Row count, nulls, one night, and the share labelled bad (always, the first night included)."""
    rows = figures.rows
    if rows != expected_rows:
        raise WriteBackError(f"tonight's labels have {rows} rows but {expected_rows} customers are eligible")
    if figures.null_labels:
        raise WriteBackError(f"{figures.null_labels} rows have no label")
    if rows and figures.nights != 1:
        raise WriteBackError(f"tonight's labels span {figures.nights} as-of dates instead of one")
    if figures.bad_rate > max_bad_share:
        raise WriteBackError(
            f"{figures.bad_rate:.1%} of tonight's {rows} customers are labelled bad, above the {max_bad_share:.0%} that "
            "acceptance.yml allows (performance.max_bad_share, the business's capacity to act); nothing was "
            "published and the previous labels stay"
        )


def judge_rate_change(
    figures: NightFigures,
    previous_date: dt.date | None,
    previous_rate: float | None,
    max_label_rate_change: float,
    force: bool,
) -> CheckResult:
    """The bad rate against the previous night's; --force publishes a larger move with a warning."""
    if previous_rate is not None and abs(figures.bad_rate - previous_rate) > max_label_rate_change:
        message = (
            f"bad rate {figures.bad_rate:.1%} moved more than {max_label_rate_change:.1%} from {previous_rate:.1%}"
            f" on {previous_date}"
        )
        if not force:
            raise WriteBackError(message + "; rerun with --force if this is expected")
        logger.warning("%s; published anyway (--force)", message)
    return CheckResult(figures.rows, figures.bad_rate, previous_rate, previous_date)


def check_staging(
    conn: psycopg.Connection,
    schema: str,
    expected_rows: int,
    as_of_date: dt.date,
    max_label_rate_change: float = DEFAULT_MAX_LABEL_RATE_CHANGE,
    force: bool = False,
    max_bad_share: float = 1.0,
) -> CheckResult:
    """The night's checks (judge_night), one row per customer, and the label rate against the previous night
    (--force does not waive the bad share)."""
    staging = _ident(schema, STAGING)
    figures = NightFigures(*conn.execute(
        sql.SQL(
            "select count(*), count(*) filter (where label is null), count(distinct as_of_date),"
            " coalesce(avg((label = 'bad')::int)::float8, 0) from {}"
        ).format(staging)
    ).fetchone())
    judge_night(figures, expected_rows, max_bad_share)
    try:
        conn.execute(
            sql.SQL("alter table {} add constraint {} primary key (customer_id)").format(
                staging, sql.Identifier(f"{STAGING}_pkey")
            )
        )
    except psycopg.errors.UniqueViolation as error:
        raise WriteBackError(f"a customer has more than one label tonight: {error.diag.message_detail}") from error
    return judge_rate_change(figures, *_previous_night(conn, schema, as_of_date), max_label_rate_change, force)


def _acl_grants(conn: psycopg.Connection, schema: str, name: str) -> list[tuple[str, str, bool]]:
    """(grantee, privilege, grantable) of a table's ACL, owner's implicit rights left out."""
    rows = conn.execute(
        """
        select case when a.grantee = 0 then 'public' else pg_get_userbyid(a.grantee) end,
               a.privilege_type, a.is_grantable
        from pg_class as c cross join lateral aclexplode(c.relacl) as a
        where c.oid = to_regclass(%s) and a.grantee <> c.relowner
        """,
        [sql.Identifier(schema, name).as_string(conn)],
    ).fetchall()
    return [tuple(row) for row in rows]


def _grant(conn: psycopg.Connection, table: sql.Identifier, grants: list[tuple[str, str, bool]]) -> None:
    for grantee, privilege, grantable in grants:
        conn.execute(
            sql.SQL("grant {} on {} to {}{}").format(
                sql.SQL(privilege),
                table,
                sql.SQL("public") if grantee == "public" else sql.Identifier(grantee),
                sql.SQL(" with grant option") if grantable else sql.SQL(""),
            )
        )


def _lock_holders(conn: psycopg.Connection, table: sql.Identifier) -> list[str]:
    rows = conn.execute(LOCK_HOLDERS_QUERY, [table.as_string(conn)]).fetchall()
    return [
        f"pid {pid} (user {user}, application {application or '-'!r}, {state}, query started"
        f" {started:%Y-%m-%d %H:%M:%S %Z}: {query!r})"
        for pid, user, application, started, state, query in rows
    ]


def _swap_in(conn: psycopg.Connection, schema: str, staging: sql.Identifier, labels: sql.Identifier) -> None:
    # The first night's table takes the readers of the history table.
    readers = LABELS if relation_exists(conn, schema, LABELS) else HISTORY
    _grant(conn, staging, _acl_grants(conn, schema, readers))
    conn.execute(sql.SQL("drop table if exists {}").format(labels))


def _swap_waiting_for_readers(
    conn: psycopg.Connection, schema: str, staging: sql.Identifier, labels: sql.Identifier, wait: SwapWait
) -> None:
    """Drop the old table, trying with a short lock_timeout until the bound: BI readers are never queued for long."""
    conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(wait.lock_timeout)))
    started = time.monotonic()
    while True:
        try:
            with conn.transaction():  # a savepoint: a lock timeout undoes this try only
                _swap_in(conn, schema, staging, labels)
            return
        except psycopg.errors.LockNotAvailable as error:
            waited = time.monotonic() - started
            holders = _lock_holders(conn, labels)
            if waited + wait.pause_seconds >= wait.max_wait_seconds:
                raise WriteBackError(
                    f"{schema}.{LABELS} stayed in use by readers for {waited:.0f} s (bound"
                    f" {wait.max_wait_seconds:g} s, CUSTLABEL_SWAP_MAX_WAIT_SECONDS): "
                    + ("; ".join(holders) or "they ended just now")
                    + "; yesterday's labels stay; end that session (select pg_cancel_backend(pid)) or raise the bound"
                ) from error
            logger.info("%s.%s is in use by %s; trying again", schema, LABELS, "; ".join(holders) or "a reader")
            time.sleep(wait.pause_seconds)


def publish(conn: psycopg.Connection, schema: str, as_of_date: dt.date, wait: SwapWait) -> None:
    """Replace tonight's history rows, then swap the staging table in; the caller commits.

    Args:
        wait: how long to wait for readers of the old table (the settings' swap_wait).
    """
    history, staging, labels = _ident(schema, HISTORY), _ident(schema, STAGING), _ident(schema, LABELS)
    conn.execute(sql.SQL("delete from {} where as_of_date = %s").format(history), [as_of_date])
    columns = sql.SQL(", ").join(sql.Identifier(c) for c, _, _ in COLUMNS)
    conn.execute(sql.SQL("insert into {h} ({c}) select {c} from {s}").format(h=history, c=columns, s=staging))
    conn.execute(
        sql.SQL("comment on table {} is {}").format(
            staging,
            sql.Literal(f"Tonight's customer labels (as of {as_of_date}), one row per customer. Written by custlabel score."),
        )
    )
    # BI queries the new table at once: give the planner statistics before it is visible.
    conn.execute(sql.SQL("analyze {}").format(staging))
    try:
        _swap_waiting_for_readers(conn, schema, staging, labels, wait)
    except psycopg.errors.DependentObjectsStillExist as error:
        raise WriteBackError(
            f"cannot swap {schema}.{LABELS}: other objects depend on it ({error.diag.message_detail});"
            " drop them, or build them on customer_label_history"
        ) from error
    conn.execute(sql.SQL("alter table {} rename to {}").format(staging, sql.Identifier(LABELS)))
    conn.execute(
        sql.SQL("alter table {} rename constraint {} to {}").format(
            labels, sql.Identifier(f"{STAGING}_pkey"), sql.Identifier(f"{LABELS}_pkey")
        )
    )
