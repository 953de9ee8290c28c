"""`custlabel simulate`: the demo master data advanced night by night, as it would have been known each night."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest

from custlabel.demo import loader
from custlabel.demo import simulation as simulate
from custlabel.monitoring import headline_figures
from custlabel.nightly import serving
from custlabel.warehouse import db, dbt_runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

END = date(2026, 6, 30)
START = datetime(2026, 7, 1, tzinfo=timezone.utc)


def fetch(settings, query: str, params: list | dict | None = None) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute(query, params).fetchall()


def traits(n: int, default: float = -3.0) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": [f"C{i}" for i in range(n)],
        "log_rate": np.log(np.full(n, 0.5)),
        "logit_default": np.full(n, default),
        "logit_return": np.full(n, -2.0),
        "logit_cancel": np.full(n, -3.0),
        "online": np.full(n, 0.5),
        "churned": np.zeros(n, dtype=bool),
    })


def test_traits_are_shrunk_toward_the_population():
    counts = pd.DataFrame({
        "customer_id": ["busy", "silent"], "recent_sales": [60, 0], "sales": [100, 0], "cancelled": [10, 0],
        "returned": [30, 0], "due": [50, 0], "unpaid": [5, 0], "online": [40, 0], "with_channel": [80, 0],
    })
    estimated = simulate.estimate_traits(counts, 180.0).set_index("customer_id")
    population_return = 30 / 90
    assert estimated.loc["silent", "churned"] and not estimated.loc["busy", "churned"]
    assert estimated.loc["silent", "logit_return"] == pytest.approx(np.log(population_return / (1 - population_return)))
    assert estimated.loc["busy", "log_rate"] == pytest.approx(np.log(60.1 / 180))


def test_drift_raises_payment_risk_and_churns_some():
    before = traits(20_000)
    after = simulate.drift(before, np.random.default_rng(1), days=90)
    assert after["logit_default"].mean() - before["logit_default"].mean() == pytest.approx(0.25 * 3 / 12, abs=0.01)
    assert 0 < after["churned"].mean() < 0.2
    churned = after["churned"].to_numpy()
    assert (after["log_rate"][churned] < before["log_rate"][churned] - 3).all()


def test_new_sales_carry_consistent_fates():
    sales = simulate.new_sales(np.random.default_rng(2), traits(2_000, default=-1.0), np.zeros(2_000), START, 3, 1)
    assert len(sales) > 1_000 and sales["sale_id"].is_unique
    assert (sales["sold_at"] >= START).all() and (sales["sold_at"] < START + pd.Timedelta(days=3)).all()
    cancelled = sales["final_status"] == "cancelled"
    assert sales.loc[cancelled, "paid_at"].isna().all() and sales.loc[cancelled, "due_at"].isna().all()
    assert sales["change_at"].notna().eq(sales["final_status"] != "completed").all()
    assert (sales["change_at"].dropna() > sales.loc[sales["change_at"].notna(), "sold_at"]).all()
    late = sales["recorded_at"].notna()
    assert 0 < late.mean() < 0.05 and (sales.loc[late, "recorded_at"] > sales.loc[late, "sold_at"]).all()
    assert sales.loc[~cancelled, "paid_at"].isna().mean() > 0.1  # some never pay at this risk


@pytest.fixture(scope="module")
def simulated(make_database):
    settings = make_database("simulate_it")
    database = settings.connection.dbname
    loader.generate_and_load(customers=600, days=400, seed=3, end_date=END, settings=settings, i_mean_database=database)
    first = simulate.advance(settings, days=1, seed=3, i_mean_database=database)
    second = simulate.advance(settings, days=30, seed=3, i_mean_database=database)
    return settings, first, second


def test_each_night_appends_what_was_known_that_night(simulated):
    settings, first, second = simulated
    assert (first.night, second.night) == (date(2026, 7, 1), date(2026, 7, 31))
    assert first.new_sales > 0 and second.new_sales > 20 * first.new_sales / 2
    assert fetch(settings, "select last_night, nights from demo_truth.sim_state") == [(second.night, 2)]
    end = datetime(2026, 8, 1, tzinfo=timezone.utc)
    future = fetch(settings, """
        select count(*) from master_data.sales as s join demo_truth.sim_sales using (sale_id)
        where s.status_changed_at >= %(end)s or s.paid_at >= %(end)s or s.updated_at >= %(end)s
           or coalesce(s.recorded_at, s.sold_at) >= %(end)s""", {"end": end})
    assert future == [(0,)]
    waiting = fetch(settings, "select count(*) from demo_truth.sim_sales where not published")[0][0]
    assert waiting > 0  # late rows and sales of the last days arrive on a later night


def test_returns_and_payments_of_earlier_sales_show_up_later(simulated):
    settings, first, _ = simulated
    revealed = fetch(settings, """
        select count(*) filter (where s.status = 'returned'), count(*) filter (where s.paid_at is not null)
        from master_data.sales as s join demo_truth.sim_sales as f using (sale_id)
        where f.sold_at < '2026-07-02' and f.customer_id is not null""")[0]
    assert revealed[0] > 0 and revealed[1] > 0
    paid_open_invoices = fetch(settings, """
        select count(*) from master_data.sales as s join demo_truth.sim_sales as f using (sale_id)
        where f.customer_id is null and s.paid_at >= '2026-07-01'""")[0][0]
    assert paid_open_invoices > 0 and first.revealed_events > 0


def test_new_customers_arrive_and_master_data_stays_fresh(simulated):
    settings, _, second = simulated
    newest = fetch(settings, "select count(*), max(updated_at) from master_data.customers where customer_id like %s", ["S%"])[0]
    assert newest[0] >= second.new_customers > 0
    last_edit = fetch(settings, "select max(updated_at) from master_data.customers")[0][0]
    assert last_edit.date() >= date(2026, 7, 1)


def test_dbt_builds_the_simulated_night(simulated):
    settings, _, second = simulated
    dbt_runner.run(settings, ["build"], target="test", as_of_date=str(second.night))
    rows = fetch(settings, "select count(*) from analytics_test.customer_features_current")[0][0]
    assert rows > 300


def test_run_advances_then_runs_the_flow_each_night(simulated, monkeypatch):
    settings, _, _ = simulated
    calls = []
    monkeypatch.setattr(serving, "run_once", lambda **params: calls.append(params) or "summary")
    monkeypatch.setattr(headline_figures, "read", lambda settings, schema, night, criteria: headline_figures.Headline(night))
    lines = list(simulate.run(settings, 2, days_per_night=1, target="test", seed=3, i_mean_database=settings.connection.dbname))
    assert [call["as_of_date"] for call in calls] == [date(2026, 8, 1), date(2026, 8, 2)]
    assert {call["target"] for call in calls} == {"test"} and all(call["auto_approve"] for call in calls)
    assert lines[0].startswith("2026-08-01: +") and lines[0].endswith("realized precision: no matured window yet")
    assert lines[-1] == "champion: none, the rule baseline labels (no version has been promoted yet)"
