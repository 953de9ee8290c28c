"""Every day boundary is a midnight in CUSTLABEL_TIMEZONE: nights, outcome windows, in dbt and every session."""

from __future__ import annotations

import os

import pytest

from custlabel.config import get_settings
from custlabel.warehouse import contract, db, dbt_runner

pytestmark = pytest.mark.integration

# Local wall-clock times, written in each zone's own session: the same day boundaries everywhere.
CUSTOMERS = [(customer, "2025-01-01 09:00") for customer in ("late_sale", "next_day_sale", "paid_late", "paid_next_day")]
SALES = [
    # id, customer, sold_at, due_at, paid_at
    *[(f"old_{c}", c, "2026-02-15 12:00", None, "2026-02-16 12:00") for c, _ in CUSTOMERS],
    ("at_2330", "late_sale", "2026-03-29 23:30", None, "2026-03-29 23:40"),
    ("at_0030", "next_day_sale", "2026-03-30 00:30", None, "2026-03-30 00:40"),
    # invoices due on the last day of the window (2026-03-01, 2026-03-29], paid that evening or after midnight
    ("due_paid_2330", "paid_late", "2026-03-10 12:00", "2026-03-29", "2026-03-29 23:30"),
    ("due_paid_0030", "paid_next_day", "2026-03-10 12:00", "2026-03-29", "2026-03-30 00:30"),
]
NIGHT = "2026-03-29"  # Europe/Berlin moves to summer time that night: a 23-hour day
BUILD = ["build", "--select", "+customer_outcomes", "--exclude-resource-type", "test",
         "--vars", "{outcome_window_days: 28, feature_history_months: 1}"]


def _load(settings) -> None:
    with db.connect(settings) as conn:
        for statement in contract.create_tables(contract.load(settings.project_dir)):
            conn.execute(statement)
        for customer, created in CUSTOMERS:
            conn.execute("insert into master_data.customers (customer_id, created_at, updated_at, segment)"
                         " values (%s, %s, %s, 'retail')", [customer, created, created])
        for sale, customer, sold, due, paid in SALES:
            conn.execute(
                "insert into master_data.sales (sale_id, customer_id, sold_at, quantity, amount, status, due_at,"
                " paid_at, updated_at) values (%s, %s, %s, 1, 10, 'completed', %s, %s, %s)",
                [sale, customer, sold, due, paid, paid],
            )


@pytest.mark.parametrize("zone", ["Etc/GMT+12", "UTC", "Asia/Tokyo", "Pacific/Kiritimati", "Europe/Berlin"])
def test_a_night_and_an_outcome_window_end_at_midnight_in_the_company_time_zone(make_database, monkeypatch, zone):
    name = "tz_" + zone.lower().replace("/", "_").replace("+", "plus")
    make_database(name)
    monkeypatch.setenv("CUSTLABEL_TIMEZONE", zone)
    settings = get_settings({**os.environ, "PGDATABASE": name})
    _load(settings)
    dbt_runner.run(settings, BUILD, target="prod", as_of_date=NIGHT)

    with db.connect(settings) as conn:
        assert conn.execute("show timezone").fetchone()[0] == zone
        last_sale = dict(conn.execute(
            "select customer_id, days_since_last_sale from analytics.customer_features where as_of_date = %s", [NIGHT]
        ).fetchall())
        outcomes = dict(conn.execute(
            "select customer_id, unpaid_invoices_count from analytics.customer_outcomes where as_of_date = '2026-03-01'"
        ).fetchall())
    # A sale at 23:30 on the night counts for it; one at 00:30 the next day does not.
    assert last_sale["late_sale"] == 0 and last_sale["next_day_sale"] == 42
    # A payment late on the window's last day is paid in the window; one after midnight is not.
    assert outcomes["paid_late"] == 0 and outcomes["paid_next_day"] == 1


# The payment of 23:30 on the window's last day reaches master data the next morning.
PAYMENT_LOADED_THE_NEXT_MORNING = [
    "update master_data.sales set paid_at = null, updated_at = '2026-03-10 12:00' where sale_id = 'due_paid_2330'",
    "update master_data.sales set paid_at = '2026-03-29 23:30', updated_at = '2026-03-30 08:00'"
    " where sale_id = 'due_paid_2330'",
]


def _unpaid_after_two_nights(make_database, name: str, grace_days: int) -> dict[str, int]:
    make_database(name)
    settings = get_settings({**os.environ, "PGDATABASE": name})
    _load(settings)
    build = [*BUILD[:-1], f"{{outcome_window_days: 28, feature_history_months: 1, label_grace_days: {grace_days}}}"]
    with db.connect(settings) as conn:
        conn.execute(PAYMENT_LOADED_THE_NEXT_MORNING[0])
    dbt_runner.run(settings, build, target="prod", as_of_date=NIGHT)
    with db.connect(settings) as conn:
        conn.execute(PAYMENT_LOADED_THE_NEXT_MORNING[1])
    dbt_runner.run(settings, build, target="prod", as_of_date="2026-03-30")
    with db.connect(settings) as conn:
        return dict(conn.execute(
            "select customer_id, unpaid_invoices_count from analytics.customer_outcomes where as_of_date = '2026-03-01'"
        ).fetchall())


def test_a_late_payment_loaded_the_next_morning_counts_with_a_grace_day(make_database, monkeypatch):
    monkeypatch.setenv("CUSTLABEL_TIMEZONE", "Asia/Tokyo")
    # Without grace the label is written the night its window ends, before the payment arrives: unpaid for good.
    assert _unpaid_after_two_nights(make_database, "tz_no_grace", 0)["paid_late"] == 1
    # With a day of grace it is written a night later, once the payment is known.
    assert _unpaid_after_two_nights(make_database, "tz_grace", 1) == {
        "late_sale": 0, "next_day_sale": 0, "paid_late": 0, "paid_next_day": 1,
    }
