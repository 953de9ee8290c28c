"""Source freshness of a night: does the newest load of master data cover it, and is it recent enough?

Night T (a calendar day in CUSTLABEL_TIMEZONE) is fresh when the newest load was made
after T ended and, at run time, is no older than the source's limit. A replay of a
past night on a newer extract is fresh by definition: what matters there is what was
known when (the snapshots), not how old the load is. A table without load times (a
company's view with `loaded_at` null) is judged on its newest `updated_at`: fresh when
it changed after the night ended, or within the limit before the night's end.
macros/collect_freshness.sql applies the same rule to `dbt source freshness`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from psycopg import sql

from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.warehouse import db, dbt_runner

SOURCES = ("customers", "sales")
MODES = ("error", "warn", "skip")


class StaleSourceError(CustlabelError):
    """A source does not cover the night, or its newest load is past its error limit."""


@dataclass(frozen=True)
class NewestLoad:
    """A source table's newest load: `loaded_at` when it has load times, else its newest `updated_at`."""

    table: str
    at: datetime | None
    by_load_time: bool


@dataclass(frozen=True)
class Limits:
    """Days a source's newest load may be old at run time before a warning and before an error (None: no check)."""

    warn_after_days: float | None
    error_after_days: float | None


@dataclass(frozen=True)
class Verdict:
    """One source judged for one night: fresh, or stale with the reason and how serious it is."""

    table: str
    level: str  # "fresh", "warn" or "error"
    reason: str = ""

    @property
    def message(self) -> str:
        return f"{self.table}: {self.reason}"


def night_end(night: date, zone: str) -> datetime:
    """When a night ends: midnight after it in the time zone."""
    return datetime.combine(night + timedelta(days=1), time(), ZoneInfo(zone))


def newest_loads(settings: Settings) -> list[NewestLoad]:
    """The newest load of each master-data table, as stg_master__loads reads it (which the build makes later):
    `loaded_at`, else the newest `updated_at` not in the future."""
    found = []
    with db.connect(settings) as conn:
        for table in SOURCES:
            if not db.relation_exists(conn, "master_data", table):
                found.append(NewestLoad(table, None, True))
                continue
            columns = {row[0] for row in conn.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'master_data' and table_name = %s", [table],
            )}
            load_time = sql.SQL("max(loaded_at)" if "loaded_at" in columns else "null::timestamptz")
            loaded, changed = conn.execute(sql.SQL(
                "select {}, max(updated_at) filter (where updated_at <= now()) from {}"
            ).format(load_time, sql.Identifier("master_data", table))).fetchone()
            found.append(NewestLoad(table, loaded, True) if loaded else NewestLoad(table, changed, False))
    return found


def _local(moment: datetime, zone: str) -> str:
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M %Z}"


def _by_age(table: str, stale: str, age: timedelta, limits: Limits, measured: str) -> Verdict:
    """A verdict on the age of a load: fresh, or stale past a limit, naming the limit."""
    days = age / timedelta(days=1)
    for level, limit in (("error", limits.error_after_days), ("warn", limits.warn_after_days)):
        if limit is not None and days > limit:
            return Verdict(table, level, f"{stale} is {days:.1f} days {measured} (limit {limit:g} days)")
    return Verdict(table, "fresh")


def is_replay(night: date, zone: str, now: datetime) -> bool:
    """Whether the night is older than the last complete night at `now` (a replay, or a backtest)."""
    return night < now.astimezone(ZoneInfo(zone)).date() - timedelta(days=1)


def judge(night: date, load: NewestLoad, limits: Limits, zone: str, now: datetime) -> Verdict:
    """The verdict on one source for a night at run time `now`; a replay needs only a load made after the night."""
    if limits.warn_after_days is None and limits.error_after_days is None:
        return Verdict(load.table, "fresh")
    ended = night_end(night, zone)
    where = f"stale for night {night} ({zone}, ended {_local(ended, zone)})"
    if load.at is None:
        return Verdict(load.table, "error", f"{where}: nothing loaded yet")
    if not load.by_load_time:
        stale = f"{where}: newest change (updated_at: the table has no load times) {_local(load.at, zone)}"
        if load.at >= ended:
            return Verdict(load.table, "fresh")
        return _by_age(load.table, stale, ended - load.at, limits, "before the night's end")
    stale = f"{where}: newest load {_local(load.at, zone)}"
    if load.at < ended:
        level = "error" if limits.error_after_days is not None else "warn"
        return Verdict(load.table, level, f"{stale} was made before the night ended")
    if is_replay(night, zone, now):
        return Verdict(load.table, "fresh")
    return _by_age(load.table, stale, now - load.at, limits, "old")


def limits_from_vars(variables: dict) -> dict[str, Limits]:
    """Each source's limits from the dbt vars (<table>_warn_after_days, <table>_error_after_days)."""
    return {
        table: Limits(variables.get(f"{table}_warn_after_days"), variables.get(f"{table}_error_after_days"))
        for table in SOURCES
    }


def fix_command(tables: list[str]) -> str:
    """The command that loads a newer extract of the stale tables."""
    return "custlabel load " + " ".join(f"--{table} {table}.csv" for table in tables)


@dataclass(frozen=True)
class Checked:
    """The night's freshness: the sources judged and the warnings that did not stop the run."""

    sources: int
    warnings: list[str]


def check(
    settings: Settings,
    night: date,
    dbt_vars: dict | None = None,
    now: datetime | None = None,
    loads: list[NewestLoad] | None = None,
) -> Checked:
    """Judge every source for the night; raise StaleSourceError naming the night, the loads, the zone and the fix.

    The var `freshness` (dbt_project.yml, or dbt_vars) is error (a stale source stops the
    run), warn (stale sources only warn) or skip. loads: the sources' newest loads as
    another engine reads them (default: Postgres's, newest_loads).
    """
    variables = {**dbt_runner.project_var_values(settings.project_dir), **(dbt_vars or {})}
    mode = variables.get("freshness", "error")
    if mode not in MODES:
        raise CustlabelError(f"dbt var freshness must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "skip":
        return Checked(0, [])
    now = now or datetime.now(timezone.utc)
    limits = limits_from_vars(variables)
    verdicts = [
        judge(night, load, limits[load.table], settings.timezone, now)
        for load in (newest_loads(settings) if loads is None else loads)
    ]
    stale = [verdict for verdict in verdicts if verdict.level != "fresh"]
    errors = [verdict for verdict in stale if verdict.level == "error"] if mode == "error" else []
    if errors:
        raise StaleSourceError(
            "; ".join(verdict.message for verdict in errors)
            + f". Load an extract made after the night ended: {fix_command([verdict.table for verdict in errors])}"
            + " (or run this night with --vars '{freshness: warn}')"
        )
    return Checked(len(verdicts), [verdict.message for verdict in stale])
