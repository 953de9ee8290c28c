"""int_sales_versioned kept build by build (only the sales whose versions could have changed rewritten) equals
a full rebuild after each night: sales edited, edited again (their versions closed), moved to another customer,
set aside after an edit (they leave) and taken back (they return), set aside with their customer deleted and
back when it is created again (no new version: int_sales_checked alone sees it), and deleted from master data."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from custlabel.config import Settings
from custlabel.demo import loader
from custlabel.warehouse import db, dbt_runner
from helpers.touched_sales import START, advance

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODELS = ["build", "--select", "+int_sales_versioned", "--exclude", "resource_type:test", "resource_type:unit_test"]

# Completed sales known for weeks, of customers that exist since long before: edits leave them clean.
KNOWN_SALES = """
select sale_id from master_data.sales
where status = 'completed' and sold_at >= '2026-05-01' and sold_at < '2026-06-01' and recorded_at is null
    and amount > 0
    and customer_id in (select customer_id from master_data.customers where created_at < '2026-01-01')
order by sale_id limit 12
"""
EDIT = "update master_data.sales set amount = amount * 2 + 1, updated_at = %(at)s where sale_id = any(%(sales)s)"
MOVE_TARGET = "select min(customer_id) as customer_id from master_data.customers where created_at < '2026-01-01'"
MOVE = f"update master_data.sales set updated_at = %(at)s, customer_id = ({MOVE_TARGET}) where sale_id = any(%(sales)s)"
SET_ASIDE = "update master_data.sales set amount = -1, updated_at = %(at)s where sale_id = any(%(sales)s)"
TAKE_BACK = "update master_data.sales set amount = 25, updated_at = %(at)s where sale_id = any(%(sales)s)"
DELETE = "delete from master_data.sales where sale_id = any(%(sales)s)"
KEEP_CUSTOMER = """
create table public.customer_deleted as select * from master_data.customers where customer_id = %(customer)s
"""
DELETE_CUSTOMER = "delete from master_data.customers where customer_id = %(customer)s"
CREATE_CUSTOMER_AGAIN = "insert into master_data.customers select * from public.customer_deleted"


def _versions(settings: Settings) -> pd.DataFrame:
    return db.read_frame(settings, "select * from analytics.int_sales_versioned order by sale_id, updated_at", None)


def _change(settings: Settings, statement: str, sales: list[str], at: str | None = None) -> None:
    with db.connect(settings) as conn:
        assert conn.execute(statement, {"sales": sales, "at": at}).rowcount == len(sales)


def _execute_on_one_row(settings: Settings, statement: str, params: dict) -> None:
    with db.connect(settings) as conn:
        assert conn.execute(statement, params).rowcount == 1


def _assert_equals_a_full_rebuild(settings: Settings, night) -> pd.DataFrame:
    """The rows kept equal those of a full rebuild, every column but when they were written; the kept rows."""
    kept = _versions(settings)
    dbt_runner.run(settings, ["run", "--full-refresh", "--select", "int_sales_versioned"], target="prod",
                   as_of_date=night)
    full = _versions(settings)
    pd.testing.assert_frame_equal(kept.drop(columns="built_at"), full.drop(columns="built_at"))
    return kept


def _sales(frame: pd.DataFrame) -> set[str]:
    return set(frame["sale_id"])


def _first_night(settings: Settings) -> list[str]:
    """The demo world built to its first night; sales that edits leave clean."""
    loader.generate_and_load(customers=400, days=200, seed=13, end_date=START, settings=settings,
                             i_mean_database=settings.connection.dbname)
    dbt_runner.run(settings, MODELS, target="prod", as_of_date=START)
    return list(db.read_frame(settings, KNOWN_SALES, None)["sale_id"])


def test_versions_kept_build_by_build_equal_a_full_rebuild(make_database):
    settings = make_database("versions_kept")
    sales = _first_night(settings)
    edited_twice, set_aside, moved, deleted = sales[:3], sales[3:4], sales[4:5], sales[5:6]
    customer_deleted = sales[6:7]
    customer = db.read_frame(settings, "select customer_id from master_data.sales where sale_id = :sale",
                             {"sale": customer_deleted[0]})["customer_id"][0]  # its sales leave, then come back
    assert customer not in set(db.read_frame(settings, MOVE_TARGET, None)["customer_id"])

    _change(settings, EDIT, sales, "2026-06-28 10:00+00")
    night = advance(settings, 1).night
    dbt_runner.run(settings, MODELS, target="prod", as_of_date=night)
    first = _assert_equals_a_full_rebuild(settings, night)
    assert _sales(first) >= set(sales)

    _change(settings, EDIT, edited_twice, "2026-06-29 10:00+00")
    _change(settings, SET_ASIDE, set_aside, "2026-06-29 10:00+00")
    _change(settings, MOVE, moved, "2026-06-29 10:00+00")
    _execute_on_one_row(settings, KEEP_CUSTOMER, {"customer": customer})
    _execute_on_one_row(settings, DELETE_CUSTOMER, {"customer": customer})
    night = advance(settings, 1).night
    started = datetime.now().astimezone()
    dbt_runner.run(settings, MODELS, target="prod", as_of_date=night)
    second = _assert_equals_a_full_rebuild(settings, night)
    assert not _sales(second) & set(set_aside + customer_deleted)
    assert (second["sale_id"].isin(edited_twice)).sum() == 3 * len(edited_twice)
    rewritten = set(second.loc[second["built_at"] >= started, "sale_id"])
    untouched = set(sales[7:]) & _sales(second)
    assert set(edited_twice + moved) <= rewritten and untouched and untouched.isdisjoint(rewritten)

    _change(settings, TAKE_BACK, set_aside, "2026-06-30 10:00+00")
    _execute_on_one_row(settings, CREATE_CUSTOMER_AGAIN, {})
    night = advance(settings, 1).night
    dbt_runner.run(settings, MODELS, target="prod", as_of_date=night)
    third = _assert_equals_a_full_rebuild(settings, night)
    assert _sales(third) >= set(set_aside + customer_deleted)

    _change(settings, DELETE, deleted)
    dbt_runner.run(settings, ["run", "--full-refresh", "--select", "int_sales_checked"], target="prod",
                   as_of_date=night)
    night = advance(settings, 1).night
    dbt_runner.run(settings, MODELS, target="prod", as_of_date=night)
    fourth = _assert_equals_a_full_rebuild(settings, night)
    assert not _sales(fourth) & set(deleted)


def test_a_table_built_before_built_at_is_written_again_whole_by_the_next_build(make_database):
    settings = make_database("versions_upgraded")
    sales = _first_night(settings)
    _change(settings, EDIT, sales, "2026-06-28 10:00+00")
    dbt_runner.run(settings, MODELS, target="prod", as_of_date=advance(settings, 1).night)
    with db.connect(settings) as conn:  # as the table was before built_at
        conn.execute("alter table analytics.int_sales_versioned drop column built_at")
    _change(settings, SET_ASIDE, sales[:1], "2026-06-29 10:00+00")
    _change(settings, EDIT, sales[1:2], "2026-06-29 10:00+00")

    night = advance(settings, 1).night
    dbt_runner.run(settings, MODELS, target="prod", as_of_date=night)
    upgraded = _assert_equals_a_full_rebuild(settings, night)
    assert _sales(upgraded) >= set(sales[1:]) and sales[0] not in _sales(upgraded)
    assert upgraded["built_at"].notna().all()
