"""The monitoring headline: what it says and when it raises an alert."""

from __future__ import annotations

from datetime import date

from custlabel.monitoring import headline_figures

NIGHT = date(2026, 6, 30)
FLOORS = headline_figures.Criteria(min_precision=0.70, min_recall=0.30)


def source(table: str, hours: float | None = 0.5, arrived: int = 10) -> headline_figures.SourceFigures:
    return headline_figures.SourceFigures(table, 1_000, arrived, 20, 5, 0.005, hours)


def realized(precision: float | None, recall: float | None) -> headline_figures.RealizedFigures:
    return headline_figures.RealizedFigures(date(2026, 3, 1), date(2026, 5, 30), "customer-labels", "3", 900, precision, recall)


def headline(**parts) -> headline_figures.Headline:
    return headline_figures.Headline(NIGHT, **parts)


def test_a_quiet_night_raises_no_alert():
    quiet = headline(sources=[source("customers"), source("sales")], realized=[realized(0.74, 0.41)])
    assert headline_figures.alerts(quiet, FLOORS) == []


def test_stale_or_empty_sources_raise_alerts():
    found = headline_figures.alerts(headline(sources=[source("customers", hours=30.0), source("sales", arrived=0)]), FLOORS)
    assert found == ["customers: newest load over 24 h old when the night was judged", "no new sales arrived that day"]
    assert headline_figures.alerts(headline(sources=[source("sales", hours=None)]), FLOORS) == [
        "sales: newest load over 24 h old when the night was judged"
    ]


def test_realized_performance_under_the_acceptance_floors_raises_alerts():
    found = headline_figures.alerts(headline(realized=[realized(0.62, 0.25)]), FLOORS)
    assert found == [
        "realized precision 62.0% of customer-labels v3 on 2026-03-01 is below the acceptance floor 70%",
        "realized recall 25.0% of customer-labels v3 on 2026-03-01 is below the acceptance floor 30%",
    ]
    assert headline_figures.alerts(headline(realized=[realized(None, None)]), FLOORS) == []
    assert headline_figures.alerts(headline(realized=[realized(0.1, 0.1)]), None) == []


def test_lines_name_every_figure_and_say_when_nothing_has_matured():
    lines = headline(
        sources=[source("sales")],
        reasons=[("sales", "duplicate_sale", 292), ("sales", "unknown_status", 32)],
        labels=[headline_figures.LabelFigures(NIGHT, "rule-baseline", "1", 2_701, 0.206)],
        alerts=["no new sales arrived that day"],
    ).lines()
    assert lines == [
        "sales: 1,000 rows, 10 arrived and 20 updated that day, newest load 0.5 h old when judged, 5 quarantined (0.50%)",
        "quarantine by reason: duplicate_sale 292, unknown_status 32",
        "labels 2026-06-30: rule-baseline v1, 2,701 customers, bad rate 20.6%",
        "realized precision: no scored night has a matured outcome window yet",
        "ALERT: no new sales arrived that day",
    ]


def test_realized_lines_show_precision_and_recall_or_na():
    assert headline(realized=[realized(0.7345, None)]).lines() == [
        "realized 2026-03-01 (window to 2026-05-30): customer-labels v3, precision 73.5%, recall n/a on 900 customers"
    ]
    assert headline_figures.percent(float("nan")) == "n/a"


def test_the_headline_is_plain_data_for_the_run_record():
    data = headline(sources=[source("sales")], alerts=["x"]).as_dict()
    assert data["sources"][0]["source_table"] == "sales" and data["alerts"] == ["x"]
    assert headline().detail == "no alerts" and headline(alerts=["a", "b"]).detail == "a; b"
