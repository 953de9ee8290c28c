"""Headline figures from the monitoring marts (dbt, `<target schema>_monitoring`) and the alerts they raise."""

from __future__ import annotations

import webbrowser
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from custlabel.config import Settings, monitoring_schema, schema_for
from custlabel.errors import CustlabelError
from custlabel.monitoring import alerts as alert_rules
from custlabel.monitoring import marts as monitoring_marts
from custlabel.monitoring import nightly_report as html_report
from custlabel.monitoring import pipeline_runs
from custlabel.monitoring.marts import Marts
from custlabel.training import acceptance
from custlabel.training.deployed_model import model_label

MARTS = ("source_volumes", "quarantine_reasons", "label_rates", "realized_performance")
STALE_HOURS = 24.0


@dataclass(frozen=True)
class SourceFigures:
    """Volumes and freshness of one source table on one night."""

    source_table: str
    source_rows: int
    rows_arrived: int
    rows_updated: int
    quarantined_rows: int
    quarantine_rate: float
    hours_since_last_load: float | None


@dataclass(frozen=True)
class LabelFigures:
    """One model version's labels on one night."""

    as_of_date: date
    model_name: str
    model_version: str
    customers: int
    bad_rate: float


@dataclass(frozen=True)
class RealizedFigures:
    """One model version's labels of a matured night, met with what customers did."""

    as_of_date: date
    window_end: date
    model_name: str
    model_version: str
    customers_with_outcome: int
    realized_precision: float | None
    realized_recall: float | None


@dataclass(frozen=True)
class EstimatedFigures:
    """One model version's precision and recall of a night, estimated from its scores (CBPE).

    None where the scores are no probabilities (the rule baseline's points), or nobody is labelled bad.
    """

    as_of_date: date
    model_name: str
    model_version: str
    labelled_bad: int
    estimated_precision: float | None
    estimated_recall: float | None


@dataclass(frozen=True)
class DriftFigures:
    """One feature's drift on a night against the training rows of the version that labelled it."""

    feature: str
    feature_kind: str
    model_version: str
    psi: float
    psi_since_first_night: float


@dataclass(frozen=True)
class Criteria:
    """The acceptance floors realized performance is held to."""

    min_precision: float
    min_recall: float


@dataclass
class Headline:
    """The figures a run summary and `custlabel monitor` show for one night."""

    as_of_date: date
    sources: list[SourceFigures] = field(default_factory=list)
    reasons: list[tuple[str, str, int]] = field(default_factory=list)
    labels: list[LabelFigures] = field(default_factory=list)
    realized: list[RealizedFigures] = field(default_factory=list)
    estimated: list[EstimatedFigures] = field(default_factory=list)
    drift: list[DriftFigures] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    report: str | None = None

    def lines(self) -> list[str]:
        """The figures as short lines for logs and the terminal."""
        lines = []
        for source in self.sources:
            fresh = "unknown" if source.hours_since_last_load is None else f"{source.hours_since_last_load:.1f} h"
            lines.append(
                f"{source.source_table}: {source.source_rows:,} rows, {source.rows_arrived:,} arrived and "
                f"{source.rows_updated:,} updated that day, newest load {fresh} old when judged, "
                f"{source.quarantined_rows:,} quarantined ({source.quarantine_rate:.2%})"
            )
        if self.reasons:
            top = ", ".join(f"{reason} {rows:,}" for _, reason, rows in self.reasons[:4])
            lines.append(f"quarantine by reason: {top}")
        for night in self.labels:
            lines.append(
                f"labels {night.as_of_date}: {model_label(night.model_name, night.model_version)}, "
                f"{night.customers:,} customers, bad rate {night.bad_rate:.1%}"
            )
        if not self.realized:
            lines.append("realized precision: no scored night has a matured outcome window yet")
        for night in self.realized:
            lines.append(
                f"realized {night.as_of_date} (window to {night.window_end}): {night.model_name} "
                f"v{night.model_version}, precision {percent(night.realized_precision)}, "
                f"recall {percent(night.realized_recall)} on {night.customers_with_outcome:,} customers"
            )
        for night in self.estimated:
            if night.estimated_precision is None and night.labelled_bad > 0:
                lines.append(
                    f"estimated {night.as_of_date}: {model_label(night.model_name, night.model_version)}: none "
                    "(its scores are rule points, not calibrated probabilities)"
                )
                continue
            lines.append(
                f"estimated {night.as_of_date}: {model_label(night.model_name, night.model_version)}, precision "
                f"{percent(night.estimated_precision)}, recall {percent(night.estimated_recall)} (from the scores)"
            )
        if self.drift:
            top = ", ".join(f"{d.feature} {d.psi_since_first_night:.2f} ({d.psi:.2f})" for d in self.drift)
            lines.append(f"largest feature drift, PSI since the version's reference night (against training): {top}")
        lines.extend(f"ALERT: {alert}" for alert in self.alerts)
        if self.report:
            lines.append(f"report: {self.report}")
        return lines

    @property
    def detail(self) -> str:
        return "; ".join(self.alerts) if self.alerts else "no alerts"

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain values (for the run record's jsonb)."""
        return asdict(self)


def percent(value: float | None) -> str:
    """A share as a percentage, or n/a."""
    return "n/a" if value is None or pd.isna(value) else f"{value:.1%}"


def alerts(headline: Headline, criteria: Criteria | None) -> list[str]:
    """What needs a person: stale or empty sources, realized performance under the acceptance floors."""
    found = []
    for source in headline.sources:
        if source.hours_since_last_load is None or source.hours_since_last_load > STALE_HOURS:
            found.append(f"{source.source_table}: newest load over {STALE_HOURS:.0f} h old when the night was judged")
        if source.rows_arrived == 0 and source.source_table == "sales":
            found.append("no new sales arrived that day")
    if criteria is not None:
        for night in headline.realized:
            if night.realized_precision is not None and night.realized_precision < criteria.min_precision:
                found.append(
                    f"realized precision {night.realized_precision:.1%} of {model_label(night.model_name, night.model_version)} "
                    f"on {night.as_of_date} is below the acceptance floor {criteria.min_precision:.0%}"
                )
            if night.realized_recall is not None and night.realized_recall < criteria.min_recall:
                found.append(
                    f"realized recall {night.realized_recall:.1%} of {model_label(night.model_name, night.model_version)} "
                    f"on {night.as_of_date} is below the acceptance floor {criteria.min_recall:.0%}"
                )
    return found


def _frame(marts: Marts, table: str, tail: str, params: dict | None = None) -> pd.DataFrame:
    """Rows of a monitoring mart; `{table}` in tail names the mart again (for subqueries)."""
    relation = marts.name(table)
    return marts.frame(f"select * from {relation} " + tail.format(table=relation), params)


def _records(frame: pd.DataFrame, kind: type) -> list:
    names = list(kind.__dataclass_fields__)
    clean = frame[names].astype(object).where(frame[names].notna(), None)
    return [kind(**row) for row in clean.to_dict("records")]


def _optional(marts: Marts, table: str, tail: str, params: dict) -> pd.DataFrame:
    """Rows of a mart that may not be built yet (an empty frame then)."""
    return _frame(marts, table, tail, params) if marts.exists(table) else pd.DataFrame()


def read(settings: Settings, schema: str, as_of_date: date | None = None, criteria: Criteria | None = None) -> Headline:
    """The headline of a night (default: the newest night in the marts) from the monitoring marts."""
    return read_marts(monitoring_marts.on_postgres(settings, schema), as_of_date, criteria)


def read_marts(marts: Marts, as_of_date: date | None = None, criteria: Criteria | None = None) -> Headline:
    """The headline of a night (default: the newest night in the marts) from the monitoring marts of an engine."""
    missing = [mart for mart in MARTS if not marts.exists(mart)]
    if missing:
        raise MonitoringNotBuiltError(
            f"{marts.schema} has no {', '.join(missing)}: run `custlabel dbt build` (or the nightly flow) for this target"
        )
    if as_of_date is None:
        newest = _frame(marts, "source_volumes", "order by as_of_date desc limit 1")
        as_of_date = newest["as_of_date"].iloc[0] if len(newest) else date.today()
    night = {"night": as_of_date}
    sources = _frame(marts, "source_volumes", "where as_of_date = :night order by source_table", night)
    reasons = _frame(marts, "quarantine_reasons", "where as_of_date = :night order by quarantined_rows desc, reason", night)
    labels = _frame(
        marts, "label_rates",
        "where as_of_date = (select max(as_of_date) from {table} where as_of_date <= :night)"
        " order by model_name, model_version",
        night,
    )
    realized = _frame(
        marts, "realized_performance",
        "where as_of_date = (select max(as_of_date) from {table} where window_end <= :night)"
        " order by model_name, model_version",
        night,
    )
    estimated = _optional(marts, "performance_estimates", "where as_of_date = :night order by model_name, model_version", night)
    drift = _optional(marts, "feature_drift", "where as_of_date = :night order by psi_since_first_night desc limit 3", night)
    headline = Headline(
        as_of_date=as_of_date,
        sources=_records(sources, SourceFigures),
        reasons=list(reasons[["source_table", "reason", "quarantined_rows"]].itertuples(index=False, name=None)),
        labels=_records(labels, LabelFigures),
        realized=_records(realized, RealizedFigures),
        estimated=_records(estimated, EstimatedFigures) if len(estimated) else [],
        drift=_records(drift, DriftFigures) if len(drift) else [],
    )
    firing = [a.line for a in alert_rules.read_marts(marts, as_of_date) if a.state == alert_rules.FIRING]
    headline.alerts = alerts(headline, criteria) + firing
    return headline


def history(settings: Settings, schema: str, nights: int = 30) -> dict[str, pd.DataFrame]:
    """The last nights of label rates and realized performance, newest first (for `custlabel monitor`)."""
    marts = monitoring_marts.on_postgres(settings, schema)
    tail = "where as_of_date >= (select max(as_of_date) from {table}) - :nights order by as_of_date desc, model_name, model_version"
    return {mart: _frame(marts, mart, tail, {"nights": nights}) for mart in ("label_rates", "realized_performance")}


class MonitoringNotBuiltError(CustlabelError):
    """The monitoring marts of a target do not exist yet."""


def _headline(settings: Settings, schema: str, as_of_date: date | None) -> Headline:
    performance = acceptance.load(settings=settings).performance
    return read(settings, schema, as_of_date, Criteria(performance.min_precision, performance.min_recall))


def open_report(settings: Settings, target: str | None = None, as_of_date: date | None = None) -> Path:
    """`custlabel monitor --open`: write the night's HTML report and open it in the default browser."""
    schema = schema_for(target or settings.target)
    headline = _headline(settings, schema, as_of_date)
    path = html_report.write(settings, schema, headline.as_of_date, headline.lines())
    webbrowser.open(path.as_uri())
    return path


def report(settings: Settings, target: str | None = None, as_of_date: date | None = None, nights: int = 30) -> str:
    """`custlabel monitor`: a night's headline, recent label rates, realized performance and pipeline runs."""
    schema = schema_for(target or settings.target)
    headline = _headline(settings, schema, as_of_date)
    recent = history(settings, schema, nights)
    sections = [f"monitoring of {schema} ({monitoring_schema(schema)}), night {headline.as_of_date}", *headline.lines()]
    columns = {
        "label_rates": ["as_of_date", "model_name", "model_version", "customers", "bad_rate", "score_p50", "score_p90"],
        "realized_performance": ["as_of_date", "window_end", "model_name", "model_version", "customers_with_outcome",
                                 "realized_precision", "realized_recall"],
    }
    for mart, frame in recent.items():
        sections += ["", f"{mart} (last {nights} nights):"]
        sections.append(frame[columns[mart]].to_string(index=False, float_format="{:.3f}".format) if len(frame) else "  (none yet)")
    past = pd.DataFrame(pipeline_runs.recent(settings, schema, nights))
    sections += ["", f"pipeline_runs (last {nights}):"]
    if len(past):
        past["started_at"] = past["started_at"].dt.strftime("%Y-%m-%d %H:%M")
        past["rows_labelled"] = past["rows_labelled"].astype("Int64")
        shown = ["run_name", "as_of_date", "started_at", "seconds", "outcome", "model_version", "rows_labelled", "bad_rate"]
        sections.append(past[shown].astype(object).fillna("-").to_string(index=False, float_format="{:.3f}".format))
    else:
        sections.append("  (none yet)")
    return "\n".join(sections)
