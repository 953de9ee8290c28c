"""A null in a required source column is quarantined, not fatal; too many bad rows still stop the
build, and the failing test's rows, with their fix, stay in the warehouse."""

from __future__ import annotations

from datetime import date

import pytest

from custlabel.config import Settings
from custlabel.demo import loader
from custlabel.warehouse import db, dbt_runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 4, 1)


def _world(make_database, name: str, customers_without_created_at: int) -> Settings:
    settings = make_database(name)
    loader.generate_and_load(customers=200, days=200, seed=8, end_date=NIGHT, settings=settings, i_mean_database=settings.connection.dbname)
    with db.connect(settings) as conn:
        conn.execute(
            "update master_data.customers set created_at = null where customer_id in"
            " (select customer_id from master_data.customers order by customer_id limit %(n)s)",
            {"n": customers_without_created_at},
        )
        conn.execute(
            "insert into master_data.customers (customer_id, created_at, updated_at)"
            " values (null, '2025-01-01', '2025-01-01')"
        )
    return settings


def test_a_required_null_is_a_warning_and_its_row_is_quarantined(make_database):
    settings = _world(make_database, "required_null", customers_without_created_at=1)
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=NIGHT)
    missing = db.read_frame(
        settings, "select count(*) as n from analytics.master_data_quarantine"
        " where source_table = 'customers' and reason = 'missing_required'",
        None,
    )["n"][0]
    assert missing == 2


def test_too_many_bad_rows_fail_the_build_and_the_failures_are_stored_with_their_fix(make_database):
    settings = _world(make_database, "required_nulls", customers_without_created_at=10)
    with pytest.raises(dbt_runner.DbtFailure, match="assert_quarantine_rate_within_bound"):
        dbt_runner.run(settings, ["build"], target="prod", as_of_date=NIGHT)
    stored = db.read_frame(
        settings, "select source_table, quarantined_rows, source_rows, fix"
        " from analytics_dbt_test__audit.assert_quarantine_rate_within_bound",
        None,
    )
    customers = stored.set_index("source_table").loc["customers"]
    source_rows = db.read_frame(settings, "select count(*) as n from master_data.customers", None)["n"][0]
    assert customers["source_rows"] == source_rows and customers["quarantined_rows"] >= 11
    assert "master_data_quarantine" in stored["fix"][0]
