"""A demo world advanced night by night with its sales touched in between (new, late, cancelled, returned and
paid sales, sales edited after they were known, payments recorded ahead of their date, a sale deleted, a customer
deleted and a sale set aside): the nights a history mart keeps from the previous night it holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from custlabel.config import Settings
from custlabel.demo import simulation
from custlabel.warehouse import db

# The night the world is loaded to and first built at; the world of test_features_kept_incrementally.
START = date(2026, 6, 27)
WORLD = {"customers": 800, "days": 420, "seed": 9, "end_date": START}
EDITED_ON = "'2026-06-29 10:00+00'"

# Sales known for weeks, each edited after it was known: a new amount, a new customer, a sale time 20
# days earlier, a due date moved; the snapshot keeps the version each night knew.
EDITS = f"""
with known as (
    select sale_id, customer_id, row_number() over (order by sale_id) as n
    from master_data.sales
    where status = 'completed' and sold_at >= '2026-05-01' and sold_at < '2026-06-01' and recorded_at is null
        and customer_id in (select customer_id from master_data.customers where created_at < '2026-01-01')
)
update master_data.sales as sales set
    amount = case when known.n % 4 = 0 then sales.amount * 3 else sales.amount end,
    customer_id = case when known.n % 4 = 1
        then (select min(customer_id) from master_data.customers where created_at < '2026-01-01') else sales.customer_id end,
    sold_at = case when known.n % 4 = 2 then sales.sold_at - interval '20 days' else sales.sold_at end,
    due_at = case when known.n % 4 = 3 then sales.due_at + 30 else sales.due_at end,
    updated_at = {EDITED_ON}
from known
where known.sale_id = sales.sale_id and known.n <= 40
"""

# Payments recorded ahead of their date, on unpaid sales known for weeks: each becomes known on the night
# 2026-07-01, which no new version of the sale marks (the edit was seen two nights before).
PAID_AHEAD = f"""
update master_data.sales set paid_at = '2026-07-01 10:00+00', updated_at = {EDITED_ON}
where sale_id in (
    select sale_id from master_data.sales
    where status = 'completed' and paid_at is null and sold_at >= '2026-06-01' and sold_at < '2026-06-20'
    order by sale_id limit 20
)
"""

# A customer deleted from master data: its sales, known on the nights held, are set aside the next night.
DELETE_A_CUSTOMER = """
delete from master_data.customers where customer_id = (
    select customer_id from master_data.sales where sold_at < '2026-06-01'
    group by customer_id order by count(*) desc, customer_id limit 1
)
"""

# A sale known for weeks set aside by an edit (its amount out of range): int_sales_checked marks its clean
# row gone, and the customer is computed again.
QUARANTINE_A_SALE = """
update master_data.sales set amount = -1, updated_at = '2026-07-01 10:00+00'
where sale_id = (
    select sale_id from master_data.sales
    where status = 'completed' and sold_at >= '2026-05-01' and sold_at < '2026-06-01' and recorded_at is null
    order by sale_id desc limit 1
)
"""

# A sale known for weeks deleted from master data: int_sales_checked sees it only once rebuilt in full (what the
# reconciliation tests tell the operator to run), and the next kept night compares every customer's known sales.
DELETE_A_SALE = """
delete from master_data.sales where sale_id = (
    select sale_id from master_data.sales
    where status = 'completed' and sold_at >= '2026-04-01' and sold_at < '2026-05-01'
    order by sale_id limit 1
)
"""


def advance(settings: Settings, days: int) -> simulation.NightData:
    """The demo world in Postgres advanced by `days` nights of new sales and events."""
    return simulation.advance(settings, days=days, seed=9, i_mean_database=settings.connection.dbname)


def advance_touching_sales(
    settings: Settings, build: Callable[[date], object], check_sales_again: Callable[[date], object]
) -> list[simulation.NightData]:
    """From the world built at START in Postgres: five nights in three builds (a sale deleted, then edits and
    payments ahead before the second; a customer deleted and a sale set aside before the last); the nights added.

    Args:
        build: builds the models of a night.
        check_sales_again: rebuilds int_sales_checked in full after the sale is deleted.
    """
    added = [advance(settings, 1)]
    build(added[-1].night)
    with db.connect(settings) as conn:
        deleted_sales = conn.execute(DELETE_A_SALE).rowcount
    check_sales_again(added[-1].night)
    with db.connect(settings) as conn:
        edited = conn.execute(EDITS).rowcount
        paid_ahead = conn.execute(PAID_AHEAD).rowcount
    added.append(advance(settings, 2))
    build(added[-1].night)
    with db.connect(settings) as conn:
        deleted = conn.execute(DELETE_A_CUSTOMER).rowcount
        quarantined = conn.execute(QUARANTINE_A_SALE).rowcount
    added.append(advance(settings, 2))  # crosses the month: the nights 07-01 and tonight, each from the one before
    build(added[-1].night)
    assert (deleted_sales, edited, paid_ahead, deleted, quarantined) == (1, 40, 20, 1, 1)
    assert sum(night.late_sales for night in added) > 0 and sum(night.revealed_events for night in added) > 0
    return added
