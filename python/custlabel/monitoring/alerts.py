"""Alert rules (alerts.yml) evaluated each night over the monitoring marts into `<schema>_monitoring.alerts`.

A rule breaches on a night when its metric is above (or below) the threshold, and
fires when at least k of its last n nights breach. Each night every rule gets one
row in the alerts table, the stable interface the release triggers read:

    as_of_date, rule, metric, value, threshold, direction, breaches, k, n,
    state ('firing' | 'resolved' | 'ok'), evaluated_at, run_id

'resolved' is the first night a rule is no longer firing; 'ok' any other quiet
night. Rules that changed state tonight (newly firing, resolved) are sent to the
notification URL through Apprise when one is configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import pandas as pd
import psycopg
from psycopg import sql
from pydantic import Field, model_validator

from custlabel import reviewed_files
from custlabel.config import Settings, monitoring_schema
from custlabel.errors import CustlabelError
from custlabel.monitoring import marts as marts_on
from custlabel.monitoring.marts import Marts
from custlabel.reviewed_files import StrictModel
from custlabel.warehouse import db

logger = logging.getLogger(__name__)

FILE_NAME = "alerts.yml"
TABLE = "alerts"
FIRING, RESOLVED, OK = "firing", "resolved", "ok"
# The release triggers (custlabel.release.triggers) that count firing alerts: a rule names the one it feeds, if any.
TRIGGERS = ("data", "performance")

# Each metric: one value per night from a monitoring mart, as (night, value).
METRICS: dict[str, tuple[str, str]] = {
    "feature_psi_max": (
        "feature_drift", "select as_of_date, max(psi) from {mart} where feature_kind <> 'sensitive' group by 1"
    ),
    "sensitive_psi_max": (
        "feature_drift", "select as_of_date, max(psi) from {mart} where feature_kind = 'sensitive' group by 1"
    ),
    "feature_shift_max": (
        "feature_drift",
        "select as_of_date, max(psi_since_first_night) from {mart} where feature_kind <> 'sensitive' group by 1",
    ),
    "sensitive_shift_max": (
        "feature_drift",
        "select as_of_date, max(psi_since_first_night) from {mart} where feature_kind = 'sensitive' group by 1",
    ),
    "score_psi": ("score_drift", "select as_of_date, max(score_psi) from {mart} group by 1"),
    "bad_rate_change": ("score_drift", "select as_of_date, max(abs(bad_rate_change)) from {mart} group by 1"),
    "estimated_precision": (
        "performance_estimates",
        "select as_of_date, min(estimated_precision) from {mart} where labelled_bad > 0 group by 1",
    ),
    "realized_precision": ("realized_performance", "select window_end, min(realized_precision) from {mart} group by 1"),
    "realized_recall": ("realized_performance", "select window_end, min(realized_recall) from {mart} group by 1"),
    "quarantine_rate": ("source_volumes", "select as_of_date, max(quarantine_rate) from {mart} group by 1"),
    "hours_since_last_load": ("source_volumes", "select as_of_date, max(hours_since_last_load) from {mart} group by 1"),
    "failed_data_tests": ("data_test_trends", "select as_of_date, tests_failed from {mart}"),
}

DDL = """
create schema if not exists {schema};
create table if not exists {table} (
    as_of_date date not null,
    rule text not null,
    metric text not null,
    value double precision,
    threshold double precision not null,
    direction text not null check (direction in ('above', 'below')),
    breaches integer not null,
    k integer not null,
    n integer not null,
    state text not null check (state in ('firing', 'resolved', 'ok')),
    evaluated_at timestamptz not null default now(),
    run_id text,
    primary key (as_of_date, rule)
);
comment on table {table} is 'One row per night and alert rule (alerts.yml): tonight''s metric value, breaches in the last n nights, and the state (firing when at least k of n breach; resolved the first quiet night after firing; ok otherwise).'
"""


class AlertConfigError(CustlabelError):
    """The alerts file is missing or invalid."""


class Rule(StrictModel):
    name: str = Field(min_length=1)
    metric: str
    direction: Literal["above", "below"]
    threshold: float
    k: int = Field(ge=1)
    n: int = Field(ge=1)
    trigger: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> Rule:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}: expected one of {', '.join(METRICS)}")
        if self.trigger is not None and self.trigger not in TRIGGERS:
            raise ValueError(
                f"unknown trigger {self.trigger!r}: expected one of {', '.join(TRIGGERS)}, or no trigger for a rule that only alerts"
            )
        if self.k > self.n:
            raise ValueError(f"k ({self.k}) cannot exceed n ({self.n}): the rule could never fire")
        return self

    def breached(self, value: float | None) -> bool:
        """Whether one night's value is past the threshold (a missing value is not)."""
        if value is None:
            return False
        return value > self.threshold if self.direction == "above" else value < self.threshold


class Notify(StrictModel):
    url: str | None = None


class AlertConfig(StrictModel):
    notify: Notify = Notify()
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> AlertConfig:
        names = [rule.name for rule in self.rules]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique, repeated: {', '.join(repeated)}")
        return self

    def feeding(self, trigger: str) -> list[str]:
        """The names of the rules whose firing counts for a release trigger."""
        return [rule.name for rule in self.rules if rule.trigger == trigger]


def parse(text: str, source: str = FILE_NAME) -> AlertConfig:
    """Validate the text of an alerts file."""
    return reviewed_files.parse(text, source, AlertConfig, AlertConfigError, "a mapping with `rules`")


def load(settings: Settings) -> AlertConfig:
    """The alert rules of the settings' file (CUSTLABEL_ALERTS_FILE, else alerts.yml at the repository root)."""
    return read_file(settings.alerts_file)


def read_file(path: Path) -> AlertConfig:
    """Read and validate an alerts file."""
    if not path.is_file():
        raise AlertConfigError(f"no alert rules at {path}: the ML engineer keeps them in {FILE_NAME}")
    return parse(path.read_text(), source=str(path))


@dataclass(frozen=True)
class Alert:
    """One rule's evaluation on one night."""

    as_of_date: date
    rule: str
    metric: str
    value: float | None
    threshold: float
    direction: str
    breaches: int
    k: int
    n: int
    state: str

    @property
    def line(self) -> str:
        value = "no value tonight" if self.value is None else f"{self.value:.4g}"
        return (
            f"{self.rule} {self.state}: {self.metric} {value} ({self.direction} {self.threshold:g} "
            f"on {self.breaches} of the last {self.n} nights, fires at {self.k})"
        )


def series(marts: Marts, metric: str, night: date, nights: int) -> list[tuple[date, float | None]]:
    """The metric's last `nights` values up to a night, newest first (none when its mart is not built)."""
    mart, query = METRICS[metric]
    if not marts.exists(mart):
        return []
    values = query.format(mart=marts.name(mart))
    frame = marts.frame(
        f"select * from ({values}) as metric (night, value) where night <= :night order by night desc limit :nights",
        {"night": night, "nights": nights},
    )
    return [(when, None if pd.isna(value) else float(value)) for when, value in frame.itertuples(index=False, name=None)]


def judge_all(marts: Marts, config: AlertConfig, night: date, previous: dict[str, str]) -> list[Alert]:
    """Every rule's state on a night, from the marts and each rule's state on the night before."""
    return [
        judge(rule, night, series(marts, rule.metric, night, rule.n), previous.get(rule.name) == FIRING)
        for rule in config.rules
    ]


def changed(evaluated: list[Alert], previous: dict[str, str]) -> list[Alert]:
    """The rules whose state changed tonight: newly firing, or resolved."""
    return [
        alert for alert in evaluated
        if alert.state == RESOLVED or (alert.state == FIRING and previous.get(alert.rule) != FIRING)
    ]


def judge(rule: Rule, night: date, values: list[tuple[date, float | None]], was_firing: bool) -> Alert:
    """A rule's state on a night from its last n values (newest first) and last night's state."""
    tonight = next((value for when, value in values if when == night), None)
    breaches = sum(rule.breached(value) for _, value in values[: rule.n])
    state = FIRING if breaches >= rule.k else RESOLVED if was_firing else OK
    return Alert(night, rule.name, rule.metric, tonight, rule.threshold, rule.direction, breaches, rule.k, rule.n, state)


def ensure_table(conn: psycopg.Connection, schema: str) -> sql.Identifier:
    """Create the alerts table in the monitoring schema when missing."""
    marts = monitoring_schema(schema)
    table = sql.Identifier(marts, TABLE)
    conn.execute(sql.SQL(DDL).format(schema=sql.Identifier(marts), table=table))
    return table


def _previous_states(conn: psycopg.Connection, table: sql.Identifier, night: date) -> dict[str, str]:
    query = sql.SQL("select distinct on (rule) rule, state from {} where as_of_date < %s order by rule, as_of_date desc")
    return dict(conn.execute(query.format(table), [night]).fetchall())


def evaluate(
    settings: Settings, schema: str, night: date, config: AlertConfig | None = None, run_id: str = ""
) -> list[Alert]:
    """Evaluate every rule for a night, replace the night's rows in the alerts table, notify changes."""
    config = config or load(settings=settings)
    with db.connect(settings) as conn:
        table = ensure_table(conn, schema)
        previous = _previous_states(conn, table, night)
        evaluated = judge_all(marts_on.on_postgres(settings, schema), config, night, previous)
        conn.execute(sql.SQL("delete from {} where as_of_date = %s").format(table), [night])
        columns = [*Alert.__dataclass_fields__, "run_id"]
        statement = sql.SQL("copy {} ({}) from stdin").format(table, sql.SQL(", ").join(map(sql.Identifier, columns)))
        with conn.cursor().copy(statement) as copy:
            for alert in evaluated:
                copy.write_row([getattr(alert, name) for name in Alert.__dataclass_fields__] + [run_id])
    moved = changed(evaluated, previous)
    if config.notify.url and moved:
        notify(config.notify.url, schema, night, moved)
    return evaluated


def notify(url: str, schema: str, night: date, alerts: list[Alert]) -> bool:
    """Send the alerts that changed state to an Apprise URL; a failed send is logged, never raised."""
    import apprise

    sender = apprise.Apprise()
    if not sender.add(url):
        raise AlertConfigError(f"notify.url {url!r} is not a URL Apprise understands (see the Apprise wiki)")
    firing = sum(alert.state == FIRING for alert in alerts)
    title = f"custlabel {schema} {night}: {firing} alert(s) firing, {len(alerts) - firing} resolved"
    sent = bool(sender.notify(title=title, body="\n".join(alert.line for alert in alerts)))
    if not sent:
        logger.warning("the alert notification to %s failed; the alerts table holds tonight's states", url)
    return sent


def read(settings: Settings, schema: str, night: date | None = None, nights: int = 1) -> list[Alert]:
    """The alert rows of the last `nights` nights up to a night (default: the newest), newest first."""
    return read_marts(marts_on.on_postgres(settings, schema), night, nights)


def read_marts(marts: Marts, night: date | None = None, nights: int = 1) -> list[Alert]:
    """The alert rows of the last `nights` nights up to a night (default: the newest) in a monitoring schema."""
    if not marts.exists(TABLE):
        return []
    table = marts.name(TABLE)
    newest = night or marts.frame(f"select max(as_of_date) as newest from {table}")["newest"].iloc[0]
    if newest is None or pd.isna(newest):
        return []
    columns = ", ".join(Alert.__dataclass_fields__)
    rows = marts.frame(
        f"select {columns} from {table} where as_of_date <= :night and as_of_date > :since order by as_of_date desc, rule",
        {"night": newest, "since": newest - timedelta(days=nights)},
    )
    clean = rows.astype(object).where(rows.notna(), None)
    return [Alert(**row) for row in clean.to_dict("records")]
