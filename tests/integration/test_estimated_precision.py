"""Precision is estimated from the scores only where they are calibrated probabilities: never for the rule baseline."""

from __future__ import annotations

from datetime import date

import pytest

from custlabel.config import Settings
from custlabel.monitoring import alerts, headline_figures
from custlabel.scoring import writeback
from custlabel.warehouse import db, dbt_runner

pytestmark = pytest.mark.integration

RULE_ONLY, WITH_MODEL = date(2026, 6, 1), date(2026, 6, 2)
MARTS = "analytics_monitoring"


def _label(customer: int, night: date, score: float, model: str, version: str) -> tuple:
    return (f"c{customer}", "bad" if score >= 0.5 else "good", score, 0.5, model, version, night)


@pytest.fixture(scope="module")
def estimated(make_database) -> Settings:
    """Label history: the rule baseline alone on the first night (its 'bad' points average 71%), a model beside it on the second."""
    settings = make_database("estimates_it")
    rule = [_label(n, night, 0.7 if n % 4 == 0 else 0.15, "rule-baseline", "1") for night in (RULE_ONLY, WITH_MODEL)
            for n in range(40)]
    rule[0] = _label(0, RULE_ONLY, 0.85, "rule-baseline", "1")
    model = [_label(100 + n, WITH_MODEL, 0.62 if n % 4 == 0 else 0.1, "customer-labels", "2") for n in range(40)]
    with db.connect(settings) as conn:
        writeback.ensure_history(conn, "analytics")
        columns = ", ".join(writeback.COPY_COLUMNS[:7])
        conn.cursor().executemany(
            f"insert into analytics.customer_label_history ({columns}) values (%s, %s, %s, %s, %s, %s, %s)", rule + model
        )
    for night in (RULE_ONLY, WITH_MODEL):
        dbt_runner.run(settings, ["build", "--select", "performance_estimates"], target="prod", as_of_date=night.isoformat())
    return settings


def test_the_rule_baseline_gets_no_estimate_and_a_model_does(estimated: Settings) -> None:
    with db.connect(estimated) as conn:
        rows = conn.execute(f"select as_of_date, model_name, labelled_bad, estimated_precision, estimated_recall"
                            f" from {MARTS}.performance_estimates order by 1, 2").fetchall()
    assert rows == [
        (RULE_ONLY, "rule-baseline", 10, None, None),
        (WITH_MODEL, "customer-labels", 10, pytest.approx(0.62), pytest.approx(6.2 / 9.2)),
        (WITH_MODEL, "rule-baseline", 10, None, None),
    ]


def test_the_alert_reads_the_estimate_only_where_it_exists(estimated: Settings) -> None:
    config = alerts.load(settings=estimated)  # the shipped alerts.yml: estimated_precision_low below 0.65
    by_night = {
        night: next(a for a in alerts.evaluate(estimated, "analytics", night, config) if a.rule == "estimated_precision_low")
        for night in (RULE_ONLY, WITH_MODEL)
    }
    assert (by_night[RULE_ONLY].value, by_night[RULE_ONLY].breaches) == (None, 0)
    assert (by_night[WITH_MODEL].value, by_night[WITH_MODEL].breaches) == (pytest.approx(0.62), 1)


def test_the_headline_names_no_estimated_precision_for_the_rule_baseline(estimated: Settings) -> None:
    with db.connect(estimated) as conn:
        cursor = conn.execute(f"select * from {MARTS}.performance_estimates where as_of_date = %s order by model_name",
                              [WITH_MODEL])
        records = [dict(zip([column.name for column in cursor.description], row, strict=True)) for row in cursor]
    figures = [headline_figures.EstimatedFigures(**{name: record[name] for name in headline_figures.EstimatedFigures.__dataclass_fields__})
               for record in records]
    lines = headline_figures.Headline(WITH_MODEL, estimated=figures).lines()
    assert "estimated 2026-06-02: customer-labels v2, precision 62.0%, recall 67.4% (from the scores)" in lines
    assert ("estimated 2026-06-02: rule-baseline v1: none (its scores are rule points, not calibrated probabilities)"
            in lines)
    assert not any("rule-baseline" in line and "precision" in line for line in lines)
