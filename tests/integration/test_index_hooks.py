"""The indexes a model's hooks create are there after every build, a --full-refresh's included."""

from __future__ import annotations

from datetime import date

import pytest

from custlabel.config import Settings
from custlabel.demo import loader
from custlabel.warehouse import db, dbt_runner

pytestmark = pytest.mark.integration

NIGHT = date(2026, 4, 1)
CHECKED_SALES_INDEXES = {
    f"int_sales_checked_{name}"
    for name in ("clean_sale_id", "quarantined", "clean_customer_id", "clean_sold_at", "clean_recorded_at",
                 "clean_status_changed_at", "clean_paid_at", "clean_due_at", "clean_updated_at", "clean_changed_at",
                 "updated_at", "arrived_at")
}


SNAPSHOT_INDEXES = {f"sales_snapshot_{name}" for name in ("current_sale_id", "closed_sale_id", "updated", "current_scd_id")}
MASTER_SALES_INDEXES = {"sales_updated_at", "sales_loaded_at", "sales_sale_id", "sales_unkeyed_sale_id"}


def _indexes(settings: Settings, table: str, schema: str = "analytics") -> set[str]:
    frame = db.read_frame(
        settings, "select indexname from pg_indexes where schemaname = :schema and tablename = :table",
        {"schema": schema, "table": table},
    )
    return set(frame["indexname"])


def test_a_full_refresh_keeps_the_indexes_of_the_hooks(make_database) -> None:
    settings = make_database("index_hooks")
    loader.generate_and_load(customers=100, days=200, seed=3, end_date=NIGHT, settings=settings,
                             i_mean_database=settings.connection.dbname)
    assert MASTER_SALES_INDEXES <= _indexes(settings, "sales", schema="master_data")
    select = ["--select", "+sales_snapshot", "--exclude", "resource_type:test", "resource_type:unit_test"]
    dbt_runner.run(settings, ["build", *select], target="prod", as_of_date=NIGHT)
    assert CHECKED_SALES_INDEXES <= _indexes(settings, "int_sales_checked")
    assert SNAPSHOT_INDEXES <= _indexes(settings, "sales_snapshot", schema="analytics_snapshots")

    # the old table still holds the indexes' names while the new one's hooks run
    dbt_runner.run(settings, ["build", "--full-refresh", *select], target="prod", as_of_date=NIGHT)
    assert CHECKED_SALES_INDEXES <= _indexes(settings, "int_sales_checked")
