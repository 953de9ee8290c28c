"""Time is handled right: features at T see only what was known at T; labels see only (T, T + W]."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from custlabel import db, dbt
from custlabel.config import Settings
from custlabel.demo import loader

pytestmark = pytest.mark.integration

NIGHT = date(2026, 4, 1)
A_MONTH_LATER = date(2026, 5, 1)
KNOWN_BEFORE = "2026-04-02 00:00:00+00"  # the end of NIGHT

A_MONTH_OF_CHANGES = f"""
-- returns, decided after the night, of sales sold and completed before it
update master_data.sales
set status = 'returned', status_changed_at = '2026-04-10 09:00+00', updated_at = '2026-04-10 09:00+00'
where sale_id in (
    select sale_id from master_data.sales
    where status = 'completed' and status_changed_at is null
        and sold_at between '2026-03-01' and '2026-03-31' and amount between 1 and 1000
    order by sale_id limit 40
);

-- payments, after the night, of invoices open at it
update master_data.sales
set paid_at = '2026-04-15 12:00+00', updated_at = '2026-04-15 12:00+00'
where sale_id in (
    select sale_id from master_data.sales
    where status = 'completed' and paid_at is null and sold_at < '2026-04-01'
    order by sale_id limit 40
);

-- late rows: sold before the night, reaching master data after it (one per sale, even if
-- master data holds a duplicated row of it)
insert into master_data.sales
select distinct on (sale_id) sale_id || '-late', customer_id, sold_at + interval '3 days', quantity, amount, 'completed',
    null, due_at, null, channel, '2026-04-05 08:00+00', '2026-04-05 08:00+00'
from master_data.sales
where sold_at between '2026-03-20' and '2026-03-28' and status = 'completed' and amount between 1 and 1000
order by sale_id limit 40;

-- a month of new sales
insert into master_data.sales
select sale_id || '-next', customer_id, sold_at + interval '31 days', quantity, amount, status,
    status_changed_at + interval '31 days', due_at + 31, paid_at + interval '31 days', channel,
    recorded_at + interval '31 days', updated_at + interval '31 days'
from master_data.sales
where sold_at >= '2026-03-02' and sold_at < '2026-04-01' and updated_at < '{KNOWN_BEFORE}';

-- re-segmented customers, and customers that reach master data after the night
-- (some created before it)
update master_data.customers
set segment = 'enterprise', updated_at = '2026-04-20 10:00+00'
where customer_id in (select customer_id from master_data.customers order by customer_id limit 25);

insert into master_data.customers
select customer_id || '-new', created_at + interval '500 days', updated_at + interval '500 days',
    country, segment, birth_date, gender
from master_data.customers
where created_at between '2024-11-01' and '2024-11-20';
"""


def _features_at(settings: Settings, night: date) -> pd.DataFrame:
    frame = db.read_frame(
        "select * from analytics.customer_features where as_of_date = :night order by customer_id",
        {"night": night},
        settings,
    )
    return frame.reset_index(drop=True)


def _execute(settings: Settings, statements: str) -> None:
    with db.connect(settings) as conn:
        conn.execute(statements)


def _customers_with(settings: Settings, suffix_or_change: str) -> list[str]:
    return list(db.read_frame(suffix_or_change, None, settings)["customer_id"])


CHECKED_SALES = (
    "select * from analytics.int_sales_checked"
    " order by sale_key, updated_at, sold_at, amount, quarantine_reason nulls first"
)


def _tonight(settings: Settings) -> dict[str, pd.DataFrame]:
    """What the incremental models hold for the newest night, and the checked sales."""
    return {
        "int_sales_checked": db.read_frame(CHECKED_SALES, None, settings),
        "customer_features": _features_at(settings, A_MONTH_LATER),
        "rule_baseline_scores": db.read_frame(
            "select * from analytics.rule_baseline_scores where as_of_date = :night order by customer_id",
            {"night": A_MONTH_LATER},
            settings,
        ),
    }


@pytest.fixture(scope="module")
def replayed(make_database):
    """Build night NIGHT, add a month of changes, rebuild a month later incrementally and in full."""
    settings = make_database("replay")
    loader.generate_and_load(customers=1_000, days=450, seed=5, end_date=NIGHT, settings=settings, i_mean_database=settings.connection.dbname)
    dbt.run(["build"], target="prod", as_of_date=NIGHT, settings=settings)
    first = _features_at(settings, NIGHT)
    _execute(settings, A_MONTH_OF_CHANGES)
    dbt.run(["build"], target="prod", as_of_date=A_MONTH_LATER, settings=settings)
    incremental = _features_at(settings, NIGHT)
    incremental_tonight = _tonight(settings)
    dbt.run(["build", "--full-refresh"], target="prod", as_of_date=A_MONTH_LATER, settings=settings)
    return settings, first, incremental, _features_at(settings, NIGHT), incremental_tonight, _tonight(settings)


def test_replay_after_a_month_of_changes_gives_identical_rows_for_the_night(replayed):
    settings, first, incremental, rebuilt, *_ = replayed
    assert len(first) > 500
    pd.testing.assert_frame_equal(incremental, first)
    pd.testing.assert_frame_equal(rebuilt, first)


def test_the_incremental_build_of_a_new_night_equals_a_full_refresh(replayed):
    *_, incremental_tonight, rebuilt_tonight = replayed
    assert len(rebuilt_tonight["int_sales_checked"]) > 10_000
    for model, rebuilt in rebuilt_tonight.items():
        pd.testing.assert_frame_equal(incremental_tonight[model], rebuilt, obj=model)


def test_the_sales_of_a_customer_deleted_from_master_data_are_set_aside_the_next_night(make_database):
    settings = make_database("deleted_customer")
    loader.generate_and_load(customers=300, days=200, seed=4, end_date=NIGHT, settings=settings, i_mean_database=settings.connection.dbname)
    dbt.run(["build"], target="prod", as_of_date=NIGHT, settings=settings)
    gone = db.read_frame(
        "select customer_id from analytics.int_sales_validated group by customer_id order by count(*), customer_id limit 1",
        None,
        settings,
    )["customer_id"][0]
    _execute(settings, f"delete from master_data.customers where customer_id = '{gone}'")

    dbt.run(["build"], target="prod", as_of_date=A_MONTH_LATER, settings=settings)
    reasons = db.read_frame(
        "select distinct quarantine_reason from analytics.int_sales_checked where customer_id = :gone",
        {"gone": gone},
        settings,
    )["quarantine_reason"]
    assert list(reasons) == ["unknown_customer"]


def test_sales_deleted_from_master_data_fail_the_build_until_a_full_refresh(make_database):
    settings = make_database("deleted")
    loader.generate_and_load(customers=300, days=200, seed=3, end_date=NIGHT, settings=settings, i_mean_database=settings.connection.dbname)
    dbt.run(["build"], target="prod", as_of_date=NIGHT, settings=settings)
    _execute(settings, "delete from master_data.sales where sale_id in (select sale_id from master_data.sales limit 3)")

    with pytest.raises(dbt.DbtFailure, match="assert_every_source_row_is_clean_or_quarantined"):
        dbt.run(["build"], target="prod", as_of_date=A_MONTH_LATER, settings=settings)
    dbt.run(["run", "--full-refresh", "--select", "int_sales_checked"], target="prod", as_of_date=A_MONTH_LATER, settings=settings)
    dbt.run(["build"], target="prod", as_of_date=A_MONTH_LATER, settings=settings)


def test_a_sale_returned_after_the_night_changes_nothing_at_the_night(replayed):
    settings, first, _, rebuilt, *_ = replayed
    returned = _customers_with(
        settings,
        "select distinct customer_id from master_data.sales where status_changed_at = '2026-04-10 09:00+00'",
    )
    assert returned
    at_night = rebuilt.set_index("customer_id").loc[returned]
    assert (at_night["return_rate_365d"].fillna(0) == first.set_index("customer_id").loc[returned]["return_rate_365d"].fillna(0)).all()
    later = _features_at(settings, A_MONTH_LATER).set_index("customer_id")
    assert (later.loc[later.index.intersection(returned), "return_rate_365d"] > 0).all()


def test_a_row_recorded_after_the_night_is_not_in_its_features(replayed):
    settings, first, _, rebuilt, *_ = replayed
    late = _customers_with(settings, "select distinct customer_id from master_data.sales where sale_id like '%-late'")
    assert late
    night = rebuilt.set_index("customer_id").loc[late]
    pd.testing.assert_series_equal(night["sales_count_30d"], first.set_index("customer_id").loc[late]["sales_count_30d"])
    counted_later = db.read_frame(
        "select count(*) as n from analytics.int_sales_known_as_of where as_of_date = :later and sale_id like '%-late'",
        {"later": A_MONTH_LATER},
        settings,
    )["n"][0]
    counted_at_night = db.read_frame(
        "select count(*) as n from analytics.int_sales_known_as_of where as_of_date = :night and sale_id like '%-late'",
        {"night": NIGHT},
        settings,
    )["n"][0]
    assert counted_later == len(db.read_frame("select 1 from master_data.sales where sale_id like '%-late'", None, settings))
    assert counted_at_night == 0


OUTCOME_NIGHT = date(2026, 3, 1)  # window (2026-03-01, 2026-05-30], matured by 2026-06-30


def _outcomes_at(settings: Settings) -> pd.DataFrame:
    return db.read_frame(
        "select * from analytics.customer_outcomes where as_of_date = :night order by customer_id",
        {"night": OUTCOME_NIGHT},
        settings,
    ).reset_index(drop=True)


def test_label_depends_only_on_the_outcome_window(make_database):
    settings = make_database("labels")
    loader.generate_and_load(customers=800, days=450, seed=9, end_date="2026-06-30", settings=settings, i_mean_database=settings.connection.dbname)
    dbt.run(["build"], target="prod", as_of_date="2026-06-30", settings=settings)
    before = _outcomes_at(settings)
    assert before["is_bad"].nunique() == 2

    # Outside the window: unpay invoices due by T, return sales sold after T + W.
    _execute(settings, """
        update master_data.sales set paid_at = null, updated_at = '2026-06-29'
        where due_at <= '2026-03-01' and status = 'completed';
        update master_data.sales set status = 'returned', status_changed_at = '2026-06-29', updated_at = '2026-06-29'
        where sold_at >= '2026-05-31' and sold_at < '2026-06-29' and status = 'completed';
    """)
    rebuild = ["build", "--full-refresh", "--select", "+customer_outcomes"]
    dbt.run(rebuild, target="prod", as_of_date="2026-06-30", settings=settings)
    pd.testing.assert_frame_equal(_outcomes_at(settings), before)

    # Inside the window: a good customer's invoice due in the window is left unpaid.
    with_invoice_due = set(db.read_frame(
        "select customer_id from master_data.sales where status = 'completed'"
        " and due_at > '2026-03-01' and due_at <= '2026-05-30'", None, settings,
    )["customer_id"])
    good = sorted(set(before[before["is_bad"] == 0]["customer_id"]) & with_invoice_due)[0]
    _execute(settings, f"""
        update master_data.sales set paid_at = null, updated_at = '2026-06-29'
        where customer_id = '{good}' and status = 'completed'
            and due_at > '2026-03-01' and due_at <= '2026-05-30';
    """)
    dbt.run(rebuild, target="prod", as_of_date="2026-06-30", settings=settings)
    after = _outcomes_at(settings).set_index("customer_id")
    assert after.loc[good, "is_bad"] == 1
