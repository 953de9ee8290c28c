"""A night's features and training rows read each sale in the version known that night: an edit
made to a sale afterwards (amount, due date, channel, customer, sale time) leaves them unchanged
when the history is rebuilt."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from custlabel.warehouse import db, dbt_runner
from custlabel.config import Settings
from custlabel.demo import loader

pytestmark = pytest.mark.integration

RECONSTRUCTED_NIGHT = date(2026, 3, 1)  # before the snapshots' first night: its label matured on 2026-05-30
OBSERVED_NIGHT = date(2026, 6, 1)  # the snapshots' first night, and a night of the history ever after
LATER = date(2026, 6, 4)

LOADED_THE_MORNING_AFTER = """
update master_data.customers set loaded_at = '{night}'::date + interval '1 day 8 hours';
update master_data.sales set loaded_at = '{night}'::date + interval '1 day 8 hours';
"""

# Completed sales of the month before the night, of customers older than the sales by 90 days (an
# edited sale stays clean: its new customer and its sale time 60 days earlier both follow the creation).
CANDIDATES = """
select sales.sale_id, sales.customer_id, sales.sold_at, sales.due_at, sales.channel
from master_data.sales as sales
inner join analytics.customer_features as features
    on features.customer_id = sales.customer_id and features.as_of_date = %(night)s
inner join master_data.customers as customers
    on customers.customer_id = sales.customer_id and customers.created_at < sales.sold_at - interval '90 days'
where sales.status = 'completed'
    and sales.sold_at >= %(night)s::date - 25 and sales.sold_at < %(night)s::date
    and (sales.recorded_at is null or sales.recorded_at < %(night)s::date)
order by sales.sale_id
"""

EDITED_ON = "'2026-06-03 10:00+00'"


def _frame(settings: Settings, table: str, night: date) -> pd.DataFrame:
    return db.read_frame(
        settings, f"select * from analytics.{table} where as_of_date = :night order by customer_id", {"night": night}
    ).reset_index(drop=True)


def _history(settings: Settings) -> dict[str, pd.DataFrame]:
    return {
        "reconstructed night's features": _frame(settings, "customer_features", RECONSTRUCTED_NIGHT),
        "observed night's features": _frame(settings, "customer_features", OBSERVED_NIGHT),
        "reconstructed night's training rows": _frame(settings, "training_set", RECONSTRUCTED_NIGHT),
    }


def _edit_one_sale_per_attribute(settings: Settings) -> dict[str, set[str]]:
    """Edit a sale's amount, due date, channel, customer and sale time; return each edit's customers."""
    with db.connect(settings) as conn:
        candidates = conn.execute(CANDIDATES, {"night": RECONSTRUCTED_NIGHT}).fetchall()
        assert len(candidates) > 20, "the demo world has too few sales before the night to edit"
        picked: dict[str, tuple] = {}
        used: set[str] = set()
        rules = {
            "amount": lambda sale: True,
            "due_at": lambda sale: sale[3] is not None and sale[3] >= RECONSTRUCTED_NIGHT,
            "channel": lambda sale: sale[4] is not None and sale[4] not in ("web", "app"),
            "customer_id": lambda sale: True,
            "sold_at": lambda sale: True,
        }
        for attribute, fits in rules.items():
            sale = next(sale for sale in candidates if sale[1] not in used and fits(sale))
            picked[attribute] = sale
            used.add(sale[1])
        new_owner = next(sale[1] for sale in reversed(candidates) if sale[1] not in used)
        changes = {
            "amount": ("amount = amount * 3", {}),
            "due_at": ("due_at = %(value)s", {"value": picked["due_at"][2].date()}),
            "channel": ("channel = 'web'", {}),
            "customer_id": ("customer_id = %(value)s", {"value": new_owner}),
            "sold_at": ("sold_at = sold_at - interval '60 days'", {}),
        }
        for attribute, (assignment, values) in changes.items():
            conn.execute(
                f"update master_data.sales set {assignment}, updated_at = {EDITED_ON} where sale_id = %(sale)s",
                {**values, "sale": picked[attribute][0]},
            )
        conn.execute(LOADED_THE_MORNING_AFTER.format(night=LATER))
    touched = {attribute: {sale[1]} for attribute, sale in picked.items()}
    touched["customer_id"].add(new_owner)
    return touched


def _edit_the_window_of_a_labelled_customer(settings: Settings) -> str:
    """Triple the amount of every sale in the window of a customer labelled on the reconstructed night."""
    with db.connect(settings) as conn:
        customer = conn.execute(
            "select customer_id from analytics.training_set where as_of_date = %(night)s and net_paid_revenue > 0"
            " order by customer_id limit 1",
            {"night": RECONSTRUCTED_NIGHT},
        ).fetchone()[0]
        conn.execute(
            f"update master_data.sales set amount = amount * 3, updated_at = {EDITED_ON}"
            " where customer_id = %(customer)s and sold_at >= %(night)s::date + 1",
            {"customer": customer, "night": RECONSTRUCTED_NIGHT},
        )
    return customer


def _changed_columns(before: pd.DataFrame, after: pd.DataFrame, customers: set[str]) -> list[str]:
    """The columns whose values differ for these customers (the row itself, when it appeared or vanished)."""
    old = before[before["customer_id"].isin(customers)].set_index("customer_id").sort_index()
    new = after[after["customer_id"].isin(customers)].set_index("customer_id").sort_index()
    if list(old.index) != list(new.index):
        return ["(rows)"]
    return [column for column in old.columns if not old[column].equals(new[column])]


def test_an_edit_after_the_night_leaves_its_features_and_training_rows_as_they_were(make_database):
    settings = make_database("facts_as_they_were")
    loader.generate_and_load(customers=150, days=300, seed=12, end_date=OBSERVED_NIGHT, settings=settings,
                             i_mean_database=settings.connection.dbname)
    with db.connect(settings) as conn:
        conn.execute(LOADED_THE_MORNING_AFTER.format(night=OBSERVED_NIGHT))
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=OBSERVED_NIGHT)
    as_built = _history(settings)
    assert (as_built["observed night's features"]["history_source"] == "observed").all()

    touched = _edit_one_sale_per_attribute(settings)
    touched["amount in the label's window"] = {_edit_the_window_of_a_labelled_customer(settings)}
    dbt_runner.run(settings, ["build", "--full-refresh"], target="prod", as_of_date=LATER)
    rebuilt = _history(settings)

    changed = {
        (attribute, table): columns
        for attribute, customers in touched.items()
        for table in as_built
        if (columns := _changed_columns(as_built[table], rebuilt[table], customers))
    }
    assert changed == {}, f"edits made after the nights changed them on rebuild: {sorted(changed)}"
    for table in as_built:
        pd.testing.assert_frame_equal(rebuilt[table], as_built[table], obj=table)

    edited = db.read_frame(
        settings, f"select (select count(*) from master_data.sales where updated_at = {EDITED_ON}) as in_master_data,"
        f" (select count(*) from analytics.int_sales_checked where updated_at = {EDITED_ON}"
        "   and quarantine_reason is null and not superseded) as clean",
        None,
    ).iloc[0]
    assert edited["in_master_data"] > len(touched) and edited["clean"] == edited["in_master_data"]
