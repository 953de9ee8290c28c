"""Time is handled right: features at T see only what was known at T; labels see only (T, T + W]."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from custlabel.config import Settings
from custlabel.demo import loader
from custlabel.warehouse import db, dbt_runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 4, 1)
A_MONTH_LATER = date(2026, 5, 1)  # a Friday
KNOWN_BEFORE = "2026-04-02 00:00:00+00"  # the end of NIGHT

# Before the first build: sales of customers who never returned anything, returned
# without saying when (null status_changed_at). The first snapshot sees them on NIGHT.
RETURNED_UNTIMED_BEFORE_THE_FIRST_NIGHT = """
update master_data.sales
set status = 'returned', updated_at = '2026-03-15 09:00+00'
where sale_id in (
    select distinct on (customer_id) sale_id from master_data.sales
    where sold_at between '2026-02-01' and '2026-02-20' and status = 'completed'
        and customer_id not in (select customer_id from master_data.sales where status <> 'completed')
    order by customer_id, sale_id limit 20
);
"""

A_MONTH_OF_CHANGES = f"""
-- returns, recorded after the night without saying when (null status_changed_at), of
-- sales sold and completed before it
update master_data.sales
set status = 'returned', updated_at = '2026-04-12 09:00+00'
where sale_id in (
    select sale_id from master_data.sales
    where status = 'completed' and status_changed_at is null and paid_at is not null
        and sold_at between '2026-02-01' and '2026-02-28' and amount between 1 and 1000
    order by sale_id limit 40
);

-- backdated payments: dated before the night, recorded after it
update master_data.sales
set paid_at = '2026-03-28 12:00+00', updated_at = '2026-04-12 12:00+00'
where sale_id in (
    select sale_id from master_data.sales
    where status = 'completed' and paid_at is null and sold_at between '2026-03-01' and '2026-03-25'
    order by sale_id desc limit 40
);

-- late rows that do not say they are late: sold before the night, no recorded_at,
-- reaching master data after it
insert into master_data.sales
select distinct on (sale_id) sale_id || '-unrecorded', customer_id, sold_at + interval '2 days', quantity, amount,
    'completed', null, due_at, null, channel, null, '2026-04-06 08:00+00'
from master_data.sales
where sold_at between '2026-03-10' and '2026-03-20' and status = 'completed' and amount between 1 and 1000
order by sale_id desc limit 40;

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


# Each extract is loaded the morning after its night: the snapshots' sightings count for that night.
LOADED_THE_MORNING_AFTER = """
update master_data.customers set loaded_at = '{night}'::date + interval '1 day 8 hours';
update master_data.sales set loaded_at = '{night}'::date + interval '1 day 8 hours';
"""


def _features_at(settings: Settings, night: date) -> pd.DataFrame:
    frame = db.read_frame(
        settings, "select * from analytics.customer_features where as_of_date = :night order by customer_id",
        {"night": night},
    )
    return frame.reset_index(drop=True)


def _execute(settings: Settings, statements: str) -> None:
    with db.connect(settings) as conn:
        conn.execute(statements)


def _customers_with(settings: Settings, suffix_or_change: str) -> list[str]:
    return list(db.read_frame(settings, suffix_or_change, None)["customer_id"])


CHECKED_SALES = (
    "select * from analytics.int_sales_checked"
    " order by sale_key, updated_at, sold_at, amount, quarantine_reason nulls first"
)


def _tonight(settings: Settings) -> dict[str, pd.DataFrame]:
    """What the incremental models hold for the newest night, and the checked sales (without when each build changed
    a sale's clean row, which differs between builds by design)."""
    checked = db.read_frame(settings, CHECKED_SALES, None).drop(columns=["clean_changed_at", "clean_customer_before"])
    return {
        "int_sales_checked": checked,
        "customer_features": _features_at(settings, A_MONTH_LATER),
        "rule_baseline_scores": db.read_frame(
            settings, "select * from analytics.rule_baseline_scores where as_of_date = :night order by customer_id",
            {"night": A_MONTH_LATER},
        ),
    }


@pytest.fixture(scope="module")
def replayed(make_database):
    """Build night NIGHT, add a month of changes, rebuild a month later incrementally and in full."""
    settings = make_database("replay")
    loader.generate_and_load(customers=1_000, days=450, seed=5, end_date=NIGHT, settings=settings, i_mean_database=settings.connection.dbname)
    _execute(settings, RETURNED_UNTIMED_BEFORE_THE_FIRST_NIGHT)
    _execute(settings, LOADED_THE_MORNING_AFTER.format(night=NIGHT))
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=NIGHT)
    first = _features_at(settings, NIGHT)
    _execute(settings, A_MONTH_OF_CHANGES)
    _execute(settings, LOADED_THE_MORNING_AFTER.format(night=A_MONTH_LATER))
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=A_MONTH_LATER)
    incremental = _features_at(settings, NIGHT)
    incremental_tonight = _tonight(settings)
    dbt_runner.run(settings, ["build", "--full-refresh"], target="prod", as_of_date=A_MONTH_LATER)
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
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=NIGHT)
    gone = db.read_frame(
        settings, "select customer_id from analytics.int_sales_validated group by customer_id order by count(*), customer_id limit 1",
        None,
    )["customer_id"][0]
    _execute(settings, f"delete from master_data.customers where customer_id = '{gone}'")

    dbt_runner.run(settings, ["build"], target="prod", as_of_date=A_MONTH_LATER)
    reasons = db.read_frame(
        settings, "select distinct quarantine_reason from analytics.int_sales_checked where customer_id = :gone",
        {"gone": gone},
    )["quarantine_reason"]
    assert list(reasons) == ["unknown_customer"]


def test_the_sales_a_customer_edit_dates_before_its_creation_are_set_aside_the_next_night(make_database):
    settings = make_database("customer_created_later")
    loader.generate_and_load(customers=300, days=200, seed=5, end_date=NIGHT, settings=settings, i_mean_database=settings.connection.dbname)
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=NIGHT)
    customer, created_at = db.read_frame(
        settings,
        "select customer_id, percentile_disc(0.5) within group (order by sold_at) as created_at "
        "from analytics.int_sales_validated group by customer_id having count(*) >= 4 order by customer_id limit 1",
        None,
    ).iloc[0]
    _execute(settings, f"update master_data.customers set created_at = '{created_at}', updated_at = '2026-04-20 10:00+00' "
                       f"where customer_id = '{customer}'")

    dbt_runner.run(settings, ["build"], target="prod", as_of_date=A_MONTH_LATER)
    checked = db.read_frame(
        settings, "select sold_at < :created_at as sold_before, coalesce(quarantine_reason, 'clean') as state "
                  "from analytics.int_sales_checked "
                  "where customer_id = :customer and not superseded group by 1, 2 order by 1",
        {"customer": customer, "created_at": created_at},
    )
    assert checked.to_dict("records") == [
        {"sold_before": False, "state": "clean"},
        {"sold_before": True, "state": "sold_before_customer_existed"},
    ]


def test_sales_deleted_from_master_data_fail_the_build_until_a_full_refresh(make_database):
    settings = make_database("deleted")
    loader.generate_and_load(customers=300, days=200, seed=3, end_date=NIGHT, settings=settings, i_mean_database=settings.connection.dbname)
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=NIGHT)
    _execute(settings, "delete from master_data.sales where sale_id in (select sale_id from master_data.sales limit 3)")

    reconciliation = "assert_checked_sales_match_master_data|assert_every_source_row_is_clean_or_quarantined"
    with pytest.raises(dbt_runner.DbtFailure, match=reconciliation):
        dbt_runner.run(settings, ["build"], target="prod", as_of_date=A_MONTH_LATER)
    dbt_runner.run(settings, ["run", "--full-refresh", "--select", "int_sales_checked"], target="prod", as_of_date=A_MONTH_LATER)
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=A_MONTH_LATER)


# Sales whose id is not written as it is keyed (empty, spaces around it, null): a kept night re-checks them
# every night, through master data's partial index on them rather than the changed keys (macro unkeyed_sale_id).
UNKEYED_SALES = """
insert into master_data.sales (sale_id, customer_id, sold_at, quantity, amount, status, due_at, updated_at)
select ids.sale_id, sales.customer_id, sales.sold_at, sales.quantity, sales.amount, sales.status, sales.due_at,
    '{updated}'::timestamptz
from (select * from master_data.sales where sale_id is not null order by sale_id limit 1) as sales
cross join (values ({ids})) as ids (sale_id);
"""


def test_sales_without_a_keyed_id_are_checked_again_each_night_as_in_a_full_build(make_database):
    settings = make_database("unkeyed_ids")
    loader.generate_and_load(customers=300, days=200, seed=7, end_date=NIGHT, settings=settings, i_mean_database=settings.connection.dbname)
    _execute(settings, UNKEYED_SALES.format(updated="2026-03-20 10:00+00", ids="''), (' spaced '"))
    models = ["build", "--select", "+int_sales_checked", "--exclude", "resource_type:test", "resource_type:unit_test"]
    dbt_runner.run(settings, models, target="prod", as_of_date=NIGHT)
    _execute(settings, UNKEYED_SALES.format(updated="2026-04-20 10:00+00", ids="null), (' spaced later'"))

    dbt_runner.run(settings, models, target="prod", as_of_date=A_MONTH_LATER)
    kept = db.read_frame(settings, CHECKED_SALES, None).drop(columns=["clean_changed_at", "clean_customer_before"])
    dbt_runner.run(settings, [*models, "--full-refresh"], target="prod", as_of_date=A_MONTH_LATER)
    rebuilt = db.read_frame(settings, CHECKED_SALES, None).drop(columns=["clean_changed_at", "clean_customer_before"])

    assert rebuilt["sale_key"].isin(["", "spaced", "spaced later"]).sum() == 4
    pd.testing.assert_frame_equal(kept, rebuilt)


# A night's edits, then the night after: one of them edited again, and in the day kept for late commits, an
# exact copy of another committed late (a duplicate) and a sale of the day before committed late.
EDITED_SALES = """
update master_data.sales set amount = amount + 1, updated_at = '2026-04-20 10:00+00'
where sale_id in (select sale_id from master_data.sales where status = 'completed' order by sale_id limit 30);
"""
EDITED_AGAIN_AND_COMMITTED_LATE = """
update master_data.sales set amount = amount + 1, updated_at = '2026-04-21 08:00+00'
where sale_id = (select max(sale_id) from master_data.sales where updated_at = '2026-04-20 10:00+00');
insert into master_data.sales
select * from master_data.sales where updated_at = '2026-04-20 10:00+00' order by sale_id limit 1;
insert into master_data.sales
select sale_id || '-late', customer_id, sold_at, quantity, amount, status, status_changed_at, due_at, paid_at,
    channel, recorded_at, '2026-04-20 09:00+00'
from master_data.sales where status = 'completed' order by sale_id desc limit 1;
"""


def test_sales_checked_the_night_before_are_not_checked_again_but_rows_committed_late_are(make_database):
    settings = make_database("checked_once")
    loader.generate_and_load(customers=300, days=200, seed=11, end_date=NIGHT, settings=settings, i_mean_database=settings.connection.dbname)
    models = ["build", "--select", "+int_sales_checked", "--exclude", "resource_type:test", "resource_type:unit_test"]
    dbt_runner.run(settings, models, target="prod", as_of_date=NIGHT)
    _execute(settings, EDITED_SALES)
    dbt_runner.run(settings, models, target="prod", as_of_date=A_MONTH_LATER)
    written = "select sale_key, xmin::text as written_by from analytics.int_sales_checked where updated_at = '2026-04-20 10:00+00'"
    edited = db.read_frame(settings, written, None)
    _execute(settings, EDITED_AGAIN_AND_COMMITTED_LATE)

    dbt_runner.run(settings, models, target="prod", as_of_date=A_MONTH_LATER)
    kept = db.read_frame(settings, CHECKED_SALES, None).drop(columns=["clean_changed_at", "clean_customer_before"])
    not_rewritten = edited.merge(db.read_frame(settings, written, None), how="inner")
    dbt_runner.run(settings, [*models, "--full-refresh"], target="prod", as_of_date=A_MONTH_LATER)
    rebuilt = db.read_frame(settings, CHECKED_SALES, None).drop(columns=["clean_changed_at", "clean_customer_before"])

    assert len(edited) == 30
    assert len(not_rewritten) == 28, "only the sale edited again and the one with a late copy are checked again"
    copied = rebuilt[rebuilt["sale_key"] == edited["sale_key"].min()]
    assert sorted(copied["quarantine_reason"].fillna("clean")) == ["clean", "duplicate_sale"]
    assert rebuilt["sale_key"].str.endswith("-late").sum() == 1
    pd.testing.assert_frame_equal(kept, rebuilt)


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


def _unchanged_at_the_night(replayed, customers_query: str, columns: list[str]) -> list[str]:
    """The customers the query names, after checking their features at NIGHT are what the first build wrote."""
    settings, first, incremental, rebuilt, *_ = replayed
    customers = _customers_with(settings, customers_query)
    assert customers
    expected = first.set_index("customer_id").loc[customers, columns]
    for built in (incremental, rebuilt):
        pd.testing.assert_frame_equal(built.set_index("customer_id").loc[customers, columns], expected)
    return customers


def _later(settings: Settings, customers: list[str]) -> pd.DataFrame:
    later = _features_at(settings, A_MONTH_LATER).set_index("customer_id")
    return later.loc[later.index.intersection(customers)]


def test_a_row_recorded_after_the_night_is_not_in_its_features(replayed):
    settings = replayed[0]
    late = _unchanged_at_the_night(
        replayed,
        "select distinct customer_id from master_data.sales where sale_id like '%-late'",
        ["sales_count_30d", "sales_count_90d", "revenue_90d"],
    )
    known = db.read_frame(
        settings, "select sale_known_at from analytics.int_sales_known_at where sale_id like '%-late'", None
    )["sale_known_at"]
    assert len(known) == 40
    assert known.between(pd.Timestamp(KNOWN_BEFORE), pd.Timestamp("2026-05-01 23:59:59+00")).all()
    assert len(_later(settings, late)) == len(late)


def test_a_late_row_without_recorded_at_enters_the_past_when_first_seen(replayed):
    settings = replayed[0]
    late = _unchanged_at_the_night(
        replayed,
        "select distinct customer_id from master_data.sales where sale_id like '%-unrecorded'",
        ["sales_count_30d", "sales_count_90d", "revenue_90d"],
    )
    seen = db.read_frame(
        settings, "select distinct sale_known_at from analytics.int_sales_known_at where sale_id like '%-unrecorded'",
        None,
    )["sale_known_at"]
    assert [value.date() for value in seen] == [A_MONTH_LATER]
    assert (_later(settings, late)["sales_count_90d"] > 0).all()


def test_a_return_without_its_time_is_not_seen_by_the_nights_before_it_was_recorded(replayed):
    settings = replayed[0]
    returned = _unchanged_at_the_night(
        replayed,
        "select distinct customer_id from master_data.sales"
        " where status = 'returned' and status_changed_at is null and updated_at = '2026-04-12 09:00+00'",
        ["return_rate_365d", "revenue_90d", "revenue_365d"],
    )
    flagged = db.read_frame(
        settings, "select bool_and(status_change_time_unknown) as all_flagged from analytics.int_sales_checked"
        " where status = 'returned' and status_changed_at is null",
        None,
    )["all_flagged"][0]
    assert flagged
    assert (_later(settings, returned)["return_rate_365d"] > 0).all()


def test_a_return_without_its_time_counts_as_completed_before_the_first_snapshot(replayed):
    settings = replayed[0]
    customers = _customers_with(
        settings,
        "select distinct customer_id from master_data.sales where status = 'returned' and status_changed_at is null"
        " and updated_at = '2026-03-15 09:00+00'",
    )
    assert customers
    before_the_snapshot = _features_at(settings, date(2026, 3, 1)).set_index("customer_id")
    first_night = _features_at(settings, NIGHT).set_index("customer_id")
    assert (before_the_snapshot.loc[before_the_snapshot.index.intersection(customers), "returns_count_90d"] == 0).all()
    assert (first_night.loc[customers, "returns_count_90d"] > 0).all()


def test_a_payment_recorded_after_the_night_is_not_seen_by_it(replayed):
    settings = replayed[0]
    paid = _unchanged_at_the_night(
        replayed,
        "select distinct customer_id from master_data.sales"
        " where paid_at = '2026-03-28 12:00+00' and updated_at = '2026-04-12 12:00+00'",
        ["open_invoices_count", "overdue_invoices_count", "avg_days_to_pay_365d", "late_payment_rate_365d"],
    )
    known = db.read_frame(
        settings, "select distinct paid_known_at from analytics.int_sales_known_at where paid_at = '2026-03-28 12:00+00'",
        None,
    )["paid_known_at"]
    assert [value.date() for value in known] == [A_MONTH_LATER]
    assert len(_later(settings, paid)) > 0


def test_customer_attributes_before_the_snapshot_saw_them_are_its_earliest_version(replayed):
    settings, first, _, rebuilt, *_ = replayed
    history = db.read_frame(
        settings, "select customer_id, as_of_date, history_source, segment from analytics.customer_features", None
    )
    before = history[history["as_of_date"] < NIGHT]
    assert len(before) > 1_000
    assert set(before["history_source"]) == {"reconstructed"}
    assert (before["segment"] != "unknown").mean() > 0.9
    first_seen = first.set_index("customer_id")["segment"]  # the snapshot's first, earliest, versions
    still_active = before[before["customer_id"].isin(first_seen.index)]
    assert len(still_active) > 1_000
    pd.testing.assert_series_equal(
        still_active["segment"].reset_index(drop=True),
        first_seen.loc[still_active["customer_id"]].reset_index(drop=True),
        check_names=False,
    )
    at_night = history[history["as_of_date"] == NIGHT]
    assert set(at_night["history_source"]) == {"observed"}
    assert (at_night["segment"] != "unknown").mean() > 0.9
    resegmented = _customers_with(
        settings, "select customer_id from master_data.customers where updated_at = '2026-04-20 10:00+00'"
    )
    at_night = rebuilt.set_index("customer_id").loc[resegmented, "segment"]
    pd.testing.assert_series_equal(at_night, first.set_index("customer_id").loc[resegmented, "segment"])
    assert set(_later(settings, resegmented)["segment"]) == {"enterprise"}


# Nights of one week and the next: the first build checks every row; the tests of the ordinary nights after it read
# the rows of their week; a full check is due once the last one passed 7 nights before (macros/tests/checked_since.sql).
FIRST_BUILD = date(2026, 4, 27)  # a Monday
A_SUNDAY = date(2026, 5, 3)
MISSED_MONDAY = date(2026, 5, 4)
TUESDAY = date(2026, 5, 5)
WEDNESDAY = date(2026, 5, 6)
EDIT_IN_PLACE = """
update master_data.sales set amount = amount + 1
where sale_id in (select sale_id from master_data.sales order by sale_id {order} limit 3)
"""


def test_a_missed_full_check_night_moves_the_full_check_to_the_next_night_built(make_database):
    settings = make_database("silent_edit")
    loader.generate_and_load(customers=300, days=200, seed=6, end_date=FIRST_BUILD, settings=settings, i_mean_database=settings.connection.dbname)
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=FIRST_BUILD)
    _execute(settings, EDIT_IN_PLACE.format(order="asc"))

    # the Sunday checks the rows updated in its week: these were updated months before
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=A_SUNDAY)
    reconciliation = ["test", "--select", "assert_checked_sales_match_master_data"]
    with pytest.raises(dbt_runner.DbtFailure, match="assert_checked_sales_match_master_data"):
        dbt_runner.run(settings, reconciliation, target="prod", as_of_date=A_SUNDAY, extra_vars={"full_checks": "always"})

    # no build on the Monday: the Tuesday is the first night 7 nights after the last full check
    assert MISSED_MONDAY.isoweekday() == 1
    with pytest.raises(dbt_runner.DbtFailure, match="assert_checked_sales_match_master_data"):
        dbt_runner.run(settings, ["build"], target="prod", as_of_date=TUESDAY)
    dbt_runner.run(settings, ["run", "--full-refresh", "--select", "int_sales_checked"], target="prod", as_of_date=TUESDAY)
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=TUESDAY)

    # the Wednesday is an ordinary night again: an edit in place is not seen before the next full check
    _execute(settings, EDIT_IN_PLACE.format(order="desc"))
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=WEDNESDAY)
    recorded = db.read_frame(settings, "select as_of_date from analytics_monitoring.full_check_nights order by 1", None)
    assert list(recorded["as_of_date"]) == [FIRST_BUILD, TUESDAY]


OUTCOME_NIGHT = date(2026, 3, 1)  # window (2026-03-01, 2026-05-30], matured by 2026-06-30


def _outcomes_at(settings: Settings) -> pd.DataFrame:
    return db.read_frame(
        settings, "select * from analytics.customer_outcomes where as_of_date = :night order by customer_id",
        {"night": OUTCOME_NIGHT},
    ).reset_index(drop=True)


def test_label_depends_only_on_the_outcome_window(make_database):
    settings = make_database("labels")
    loader.generate_and_load(customers=800, days=450, seed=9, end_date="2026-06-30", settings=settings, i_mean_database=settings.connection.dbname)
    dbt_runner.run(settings, ["build"], target="prod", as_of_date="2026-06-30")
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
    dbt_runner.run(settings, rebuild, target="prod", as_of_date="2026-06-30")
    pd.testing.assert_frame_equal(_outcomes_at(settings), before)

    # Inside the window: a good customer's invoice due in the window is left unpaid.
    with_invoice_due = set(db.read_frame(
        settings, "select customer_id from master_data.sales where status = 'completed'"
        " and due_at > '2026-03-01' and due_at <= '2026-05-30'", None,
    )["customer_id"])
    good = sorted(set(before[before["is_bad"] == 0]["customer_id"]) & with_invoice_due)[0]
    _execute(settings, f"""
        update master_data.sales set paid_at = null, updated_at = '2026-06-29'
        where customer_id = '{good}' and status = 'completed'
            and due_at > '2026-03-01' and due_at <= '2026-05-30';
    """)
    dbt_runner.run(settings, rebuild, target="prod", as_of_date="2026-06-30")
    after = _outcomes_at(settings).set_index("customer_id")
    assert after.loc[good, "is_bad"] == 1
