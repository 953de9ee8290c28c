"""Monitoring benchmark: the nightly monitoring refresh (drift, estimates, alerts, report) at N customers.

The label history and feature rows are synthesized in SQL (the scoring benchmark's
synthetic features) in the dev target's schema of the benchmark database: a
reference night whose rows give the version's reference bins, a night already
monitored, and tonight. Timed, as the nightly run does it after publishing: the
dbt build of the monitoring marts that read the label history (with the storing of
its test results), the alert rules, and the HTML report; then the report's size and
the time headless Chromium takes to open it (beside a blank page's, the browser's
own start).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import date, datetime, timezone

from psycopg import sql

from custlabel import browser
from custlabel.config import Settings, monitoring_schema
from custlabel.devtools.benchmarks.scoring import create_synthetic_features
from custlabel.monitoring import alerts, drift_reference, nightly_report
from custlabel.nightly import night_steps
from custlabel.scoring import writeback
from custlabel.warehouse import db, dbt_runner, dbt_test_history

TARGET = "dev"
MODEL, VERSION = "customer-labels", "1"
REFERENCE_NIGHT, LAST_NIGHT, TONIGHT = date(2026, 1, 1), date(2026, 1, 31), date(2026, 3, 2)
REFERENCE_SAMPLE = 50_000
TARGETS = {"seconds": 30.0, "report_mb": 5.0, "open_seconds": 2.0}

HISTORY = """
insert into {history} (customer_id, label, score, threshold, model_name, model_version, as_of_date)
select customer_id, case when score >= 0.5 then 'bad' else 'good' end, score, 0.5, %(model)s, %(version)s, as_of_date
from (
    select customer_id, as_of_date,
           1 / (1 + exp(-(coalesce(overdue_invoices_count, 0) - 5 + 2 * coalesce(late_payment_rate_365d, 0)))) as score
    from {features} where as_of_date = %(night)s
) as scored
"""

OUTCOMES = """
create table {outcomes} as
select customer_id, as_of_date, as_of_date + 90 as window_end, 0::float as net_paid_revenue,
       0 as unpaid_invoices_count, (random() < score)::int as is_bad
from {history} where as_of_date = %(night)s
"""

VOLUMES = """
create table {volumes} as
select night as as_of_date, source_table, rows::bigint as source_rows, (rows / 50)::bigint as rows_arrived,
       (rows / 40)::bigint as rows_updated, (rows / 200)::bigint as quarantined_rows, 0.005::float as quarantine_rate,
       (night + 1)::timestamptz - interval '2 hours' as last_loaded_at, 2.0::float as hours_since_last_load
from unnest(%(nights)s::date[]) as n (night)
cross join (values ('customers', %(customers)s), ('sales', %(customers)s * 21)) as s (source_table, rows)
"""


def _prepare(settings: Settings, customers: int) -> None:
    """Synthetic features, two monitored nights of labels, outcomes, volumes and the version's reference bins."""
    schema, marts = settings.schema, monitoring_schema(settings.schema)
    with db.connect(settings) as conn:
        create_synthetic_features(conn, schema, customers, [REFERENCE_NIGHT, LAST_NIGHT, TONIGHT])
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(marts)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(marts)))
        conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(schema, writeback.HISTORY)))
        writeback.ensure_history(conn, schema)
        tables = {
            "history": sql.Identifier(schema, writeback.HISTORY),
            "features": sql.Identifier(schema, "customer_features"),
            "outcomes": sql.Identifier(schema, "customer_outcomes"),
            "volumes": sql.Identifier(marts, "source_volumes"),
        }
        for night in (REFERENCE_NIGHT, LAST_NIGHT):
            conn.execute(sql.SQL(HISTORY).format(**tables), {"model": MODEL, "version": VERSION, "night": night})
        conn.execute(sql.SQL("drop table if exists {}").format(tables["outcomes"]))
        conn.execute(sql.SQL(OUTCOMES).format(**tables), {"night": REFERENCE_NIGHT})
        conn.execute(sql.SQL(VOLUMES).format(**tables),
                     {"nights": [REFERENCE_NIGHT, LAST_NIGHT, TONIGHT], "customers": customers})
    sample = db.read_frame(
        settings, f"select * from {schema}.customer_features where as_of_date = :night order by customer_id limit :rows",
        {"night": REFERENCE_NIGHT, "rows": REFERENCE_SAMPLE},
    )
    drift_reference.store(settings, MODEL, VERSION, sample)
    build = ["build", "--select", "realized_performance", night_steps.LABEL_MONITORING, "--log-level", "warn"]
    dbt_runner.run(settings, build, target=TARGET, as_of_date=str(LAST_NIGHT))
    with db.connect(settings) as conn:
        conn.execute(sql.SQL(HISTORY).format(**tables), {"model": MODEL, "version": VERSION, "night": TONIGHT})


def _model_seconds(settings: Settings) -> str:
    """Each model's build time in the last dbt run."""
    document = json.loads(dbt_test_history.results_path(settings).read_text())
    timed = [(r["unique_id"].split(".")[-1], r["execution_time"]) for r in document["results"] if r["unique_id"].startswith("model.")]
    return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timed)


def run(settings: Settings, customers: int) -> list[str]:
    """Time the nightly monitoring refresh on synthetic history at `customers` customers; returns the figure lines."""
    settings = replace(settings, target=TARGET)
    started = time.perf_counter()
    _prepare(settings, customers)
    lines = [f"monitoring @ {customers:,} customers: synthetic history and reference ready in {time.perf_counter() - started:.0f} s"]

    clock = time.perf_counter()
    since = datetime.now(timezone.utc)
    dbt_runner.run(settings, ["build", "--select", night_steps.LABEL_MONITORING, "--log-level", "warn"], target=TARGET,
            as_of_date=str(TONIGHT))
    dbt_test_history.store_latest(settings, settings.schema, "benchmark", TONIGHT, since)
    marts_seconds = time.perf_counter() - clock
    models = _model_seconds(settings)

    clock = time.perf_counter()
    evaluated = alerts.evaluate(settings, settings.schema, TONIGHT, run_id="benchmark")
    alerts_seconds = time.perf_counter() - clock

    clock = time.perf_counter()
    path = nightly_report.write(settings, settings.schema, TONIGHT, [f"benchmark night, {customers:,} customers"])
    report_seconds = time.perf_counter() - clock
    total = marts_seconds + alerts_seconds + report_seconds

    lines += [
        f"  refresh: marts (dbt build incl. parse and tests) {marts_seconds:.1f} s [{models}]",
        f"  refresh: alert rules {alerts_seconds:.2f} s ({sum(a.state == alerts.FIRING for a in evaluated)} firing),"
        f" report {report_seconds:.1f} s; total {total:.1f} s (target < {TARGETS['seconds']:.0f} s)",
        f"  report: {path} {path.stat().st_size / 1e6:.2f} MB (target < {TARGETS['report_mb']:.0f} MB)",
    ]
    if browser.executable() is None:
        lines.append("  report open time: chromium not installed, not measured")
        return lines
    blank = path.with_name("blank.html")
    blank.write_text("<!doctype html><title>blank</title>")
    baseline = min(browser.dump_dom(blank).seconds for _ in range(3))
    opened = min(browser.dump_dom(path).seconds for _ in range(3))
    blank.unlink()
    lines.append(
        f"  report open in headless chromium: {opened:.2f} s, a blank page {baseline:.2f} s, so {opened - baseline:.2f} s"
        f" for the report (target < {TARGETS['open_seconds']:.0f} s)"
    )
    return lines
