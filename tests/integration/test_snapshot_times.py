"""The snapshots close a version deleted from master data at the run's instant (timestamptz, the type of the
master data's updated_at): not a wall-clock time of the session's zone, which a night of the autumn's change of
clocks would read twice; and dbt, finding both times of one type, has no mismatch to warn the operator of."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from custlabel.demo import loader
from custlabel.warehouse import db, dbt_runner

pytestmark = pytest.mark.integration

NIGHT = date(2026, 4, 1)
SNAPSHOT = ["build", "--select", "+customers_snapshot", "--exclude", "resource_type:test", "resource_type:unit_test"]
MISMATCH = "Data type of snapshot table timestamp columns"


def test_a_deleted_customer_is_closed_at_the_runs_instant_and_dbt_warns_of_nothing(make_database, capfd) -> None:
    settings = make_database("snapshot_times")
    loader.generate_and_load(customers=50, days=60, seed=3, end_date=NIGHT, settings=settings,
                             i_mean_database=settings.connection.dbname)
    dbt_runner.run(settings, SNAPSHOT, target="prod", as_of_date=NIGHT)
    gone = db.read_frame(settings, "select min(customer_id) as customer_id from master_data.customers")["customer_id"][0]
    with db.connect(settings) as conn:
        conn.execute("delete from master_data.customers where customer_id = %s", [gone])
        conn.commit()

    started = datetime.now(timezone.utc)
    dbt_runner.run(settings, SNAPSHOT, target="prod", as_of_date=NIGHT)
    ended = datetime.now(timezone.utc)

    assert MISMATCH not in capfd.readouterr().out
    closed = db.read_frame(
        settings, "select dbt_valid_to, pg_typeof(dbt_valid_to)::text as type"
                  " from analytics_snapshots.customers_snapshot where customer_id = :customer", {"customer": gone},
    )
    assert len(closed) == 1 and closed["type"][0] == "timestamp with time zone"
    assert started <= closed["dbt_valid_to"][0].to_pydatetime() <= ended
