"""The monitoring marts on the built demo warehouse: volumes, quarantine, label rates, realized precision."""

from __future__ import annotations

from datetime import date

import pytest

from custlabel.config import Settings
from custlabel.monitoring import headline_figures
from custlabel.scoring import writeback
from custlabel.warehouse import db, dbt_runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 6, 30)  # DEMO_END_DATE of the built warehouse
MATURED = date(2026, 3, 1)  # a monthly night whose 90-day window ended before NIGHT
EARLIER = date(2026, 2, 1)  # a matured monthly night before MATURED
MARTS = "analytics_monitoring"


def fetch(settings: Settings, query: str, params: list | None = None) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute(query, params).fetchall()


def build_label_marts(settings: Settings, *flags: str) -> None:
    dbt_runner.run(settings, ["build", "--select", "label_rates", "realized_performance", *flags], target="prod",
            as_of_date=str(NIGHT))


def label_night(settings: Settings, night: date) -> None:
    """History rows for the night as the rule baseline labelled it."""
    with db.connect(settings) as conn:
        writeback.ensure_history(conn, "analytics")
        conn.execute(
            "insert into analytics.customer_label_history (customer_id, label, score, threshold, model_name,"
            " model_version, as_of_date, reason_1, reason_2, reason_3)"
            " select customer_id, label, score, 0.5, 'rule-baseline', 'test', as_of_date, reason_1, reason_2, reason_3"
            " from analytics.rule_baseline_scores where as_of_date = %s",
            [night],
        )


def unlabel_night(settings: Settings, night: date) -> None:
    with db.connect(settings) as conn:
        conn.execute("delete from analytics.customer_label_history where as_of_date = %s", [night])


@pytest.fixture(scope="module")
def scored_past_night(built_warehouse: Settings):
    """History rows for MATURED as the rule baseline labelled them; removed again afterwards."""
    label_night(built_warehouse, MATURED)
    build_label_marts(built_warehouse)
    yield built_warehouse
    unlabel_night(built_warehouse, MATURED)
    build_label_marts(built_warehouse, "--full-refresh")


def test_volumes_and_freshness_per_source(built_warehouse):
    volumes = {row[0]: row[1:] for row in fetch(
        built_warehouse,
        f"select source_table, source_rows, quarantined_rows, hours_since_last_load from {MARTS}.source_volumes"
        " where as_of_date = %s", [NIGHT],
    )}
    counts = dict(fetch(built_warehouse, "select 'customers', count(*) from master_data.customers"
                                         " union all select 'sales', count(*) from master_data.sales"))
    quarantined = dict(fetch(built_warehouse, "select source_table, count(*) from analytics.master_data_quarantine group by 1"))
    assert {table: rows for table, (rows, _, _) in volumes.items()} == counts
    assert {table: held for table, (_, held, _) in volumes.items()} == quarantined
    assert all(0 <= hours < 24 for _, _, hours in volumes.values())


def test_quarantine_counts_by_reason_add_up(built_warehouse):
    by_reason = fetch(built_warehouse, f"select source_table, reason, quarantined_rows from {MARTS}.quarantine_reasons"
                                       " where as_of_date = %s order by 1, 2", [NIGHT])
    direct = fetch(built_warehouse, "select source_table, reason, count(*) from analytics.master_data_quarantine"
                                    " group by 1, 2 order by 1, 2")
    assert by_reason == direct and len(direct) > 3


def test_realized_precision_and_recall_meet_history_with_outcomes(scored_past_night):
    realized = fetch(scored_past_night, f"select as_of_date, model_version, customers_labelled, customers_with_outcome,"
                                        f" true_positives, false_positives, false_negatives, realized_precision, realized_recall"
                                        f" from {MARTS}.realized_performance")
    direct = fetch(scored_past_night, """
        select count(*), count(o.is_bad),
               count(*) filter (where r.label = 'bad' and o.is_bad = 1),
               count(*) filter (where r.label = 'bad' and o.is_bad = 0),
               count(*) filter (where r.label = 'good' and o.is_bad = 1)
        from analytics.rule_baseline_scores as r
        left join analytics.customer_outcomes as o using (customer_id, as_of_date)
        where r.as_of_date = %s""", [MATURED])[0]
    labelled, with_outcome, tp, fp, fn = direct
    assert realized == [(MATURED, "test", labelled, with_outcome, tp, fp, fn,
                         pytest.approx(tp / (tp + fp)), pytest.approx(tp / (tp + fn)))]
    assert labelled == with_outcome > 0


def test_a_matured_night_labelled_after_a_later_one_is_added_as_a_full_rebuild_has_it(scored_past_night):
    realized = f"select * from {MARTS}.realized_performance order by as_of_date, model_name, model_version"
    # A row written again has a new xmin (the transaction that wrote it).
    held_rows = f"select xmin::text from {MARTS}.realized_performance where as_of_date = %s"
    held_before = fetch(scored_past_night, held_rows, [MATURED])
    label_night(scored_past_night, EARLIER)
    try:
        build_label_marts(scored_past_night)
        incremental = fetch(scored_past_night, realized)
        held_after = fetch(scored_past_night, held_rows, [MATURED])
        build_label_marts(scored_past_night, "--full-refresh")
        rebuilt = fetch(scored_past_night, realized)
    finally:
        unlabel_night(scored_past_night, EARLIER)
        build_label_marts(scored_past_night, "--full-refresh")
    assert [row[0] for row in rebuilt] == [EARLIER, MATURED]
    assert incremental == rebuilt
    assert held_after == held_before  # the night it held was not read and written again


def test_label_rate_and_score_distribution_per_night_and_version(scored_past_night):
    rates = fetch(scored_past_night, f"select as_of_date, model_name, model_version, customers, bad_rate, share_of_night,"
                                     f" score_p10 <= score_p50 and score_p50 <= score_p90 from {MARTS}.label_rates")
    customers, bad_rate = fetch(scored_past_night, "select count(*), avg((label = 'bad')::int)::float"
                                                   " from analytics.rule_baseline_scores where as_of_date = %s", [MATURED])[0]
    assert rates == [(MATURED, "rule-baseline", "test", customers, pytest.approx(bad_rate), 1.0, True)]


def test_the_headline_and_the_report_show_the_figures(scored_past_night):
    headline = headline_figures.read(scored_past_night, "analytics", NIGHT, headline_figures.Criteria(0.99, 0.99))
    assert [s.source_table for s in headline.sources] == ["customers", "sales"]
    assert [(r.as_of_date, r.model_version) for r in headline.realized] == [(MATURED, "test")]
    assert [(n.as_of_date, n.model_name) for n in headline.labels] == [(MATURED, "rule-baseline")]
    assert any(alert.startswith("realized precision") and "below the acceptance floor 99%" in alert for alert in headline.alerts)
    report = headline_figures.report(scored_past_night, target="prod", as_of_date=NIGHT, nights=30)
    assert report.startswith(f"monitoring of analytics (analytics_monitoring), night {NIGHT}")
    for section in ("label_rates (last 30 nights):", "realized_performance (last 30 nights):", "pipeline_runs (last 30):"):
        assert section in report


def test_monitoring_not_built_is_a_clear_error(make_database):
    empty = make_database("monitoring_empty")
    with pytest.raises(headline_figures.MonitoringNotBuiltError, match="run `custlabel dbt build`"):
        headline_figures.read(empty, "analytics")
