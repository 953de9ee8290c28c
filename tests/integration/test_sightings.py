"""Sightings carry the run's clock: a replay of a past night on a newer extract sees what had been seen by then."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pandas as pd
import pytest

from custlabel.config import Settings
from custlabel.warehouse import contract, db, dbt_runner

pytestmark = pytest.mark.integration

NIGHT = date(2026, 3, 1)
NEXT_NIGHT = date(2026, 3, 9)
BUILD = ["build", "--select", "+customer_features", "--exclude-resource-type", "test",
         "--vars", "{feature_history_months: 1}"]
CUSTOMERS = ["paid_late", "returned_untimed", "sale_arrived_late", "re_segmented"]
FIRST_EXTRACT = """
update master_data.customers set loaded_at = '2026-03-02 08:00+00';
update master_data.sales set loaded_at = '2026-03-02 08:00+00';
"""
# Made on 2026-03-10: facts about the days before NIGHT that the first extract did not hold.
NEWER_EXTRACT = """
update master_data.sales set paid_at = '2026-02-25 12:00+00', updated_at = '2026-03-08 09:00+00'
where sale_id = 'invoice';
update master_data.sales set status = 'returned', updated_at = '2026-03-08 09:00+00' where sale_id = 'returned';
insert into master_data.sales (sale_id, customer_id, sold_at, quantity, amount, status, updated_at)
values ('unrecorded', 'sale_arrived_late', '2026-02-26 10:00+00', 1, 30, 'completed', '2026-03-08 09:00+00');
update master_data.customers set segment = 'wholesale', updated_at = '2026-02-27 10:00+00'
where customer_id = 're_segmented';
update master_data.customers set loaded_at = '2026-03-10 08:00+00';
update master_data.sales set loaded_at = '2026-03-10 08:00+00';
"""


def _execute(settings: Settings, statements: str) -> None:
    with db.connect(settings) as conn:
        conn.execute(statements)


def _load_first_extract(settings: Settings) -> None:
    with db.connect(settings) as conn:
        for statement in contract.create_tables(contract.load(settings.project_dir)):
            conn.execute(statement)
        for customer in CUSTOMERS:
            conn.execute("insert into master_data.customers (customer_id, created_at, updated_at, segment)"
                         " values (%s, '2025-06-01', '2025-06-01', 'retail')", [customer])
            conn.execute("insert into master_data.sales (sale_id, customer_id, sold_at, quantity, amount, status,"
                         " paid_at, updated_at) values (%s, %s, '2026-01-15', 1, 10, 'completed', '2026-01-16',"
                         " '2026-01-16')", [f"old_{customer}", customer])
        conn.execute("insert into master_data.sales (sale_id, customer_id, sold_at, quantity, amount, status, due_at,"
                     " updated_at) values ('invoice', 'paid_late', '2026-02-10', 1, 20, 'completed', '2026-02-20',"
                     " '2026-02-10')")
        conn.execute("insert into master_data.sales (sale_id, customer_id, sold_at, quantity, amount, status, paid_at,"
                     " updated_at) values ('returned', 'returned_untimed', '2026-02-12', 1, 20, 'completed',"
                     " '2026-02-13', '2026-02-13')")
    _execute(settings, FIRST_EXTRACT)


def _features(settings: Settings, night: date) -> pd.DataFrame:
    return db.read_frame(settings, "select * from analytics.customer_features where as_of_date = :night order by customer_id",
                         {"night": night})


def test_a_replay_on_a_newer_extract_gives_the_features_built_at_the_time(make_database):
    settings = make_database("sightings")
    _load_first_extract(settings)
    dbt_runner.run(settings, BUILD, target="prod", as_of_date=NIGHT)
    at_the_time = _features(settings, NIGHT)
    assert len(at_the_time) == len(CUSTOMERS)

    started = datetime.now(timezone.utc)
    _execute(settings, NEWER_EXTRACT)
    dbt_runner.run(settings, [*BUILD, "--full-refresh"], target="prod", as_of_date=NIGHT)
    pd.testing.assert_frame_equal(_features(settings, NIGHT), at_the_time)

    with db.connect(settings) as conn:
        seen = conn.execute("select sale_id, seen_on, seen_at from analytics_snapshots.sales_snapshot"
                            " where sale_id in ('invoice', 'returned', 'unrecorded') and dbt_valid_to is null").fetchall()
        segment = conn.execute("select seen_on, seen_at from analytics_snapshots.customers_snapshot"
                               " where customer_id = 're_segmented' and dbt_valid_to is null").fetchone()
    # Seen by this run's clock: the night the newer extract covers, never the night replayed.
    assert {(sale, night) for sale, night, _ in seen} == {(sale, NEXT_NIGHT) for sale in ("invoice", "returned", "unrecorded")}
    assert segment[0] == NEXT_NIGHT and all(at >= started for at in [segment[1], *(at for _, _, at in seen)])

    dbt_runner.run(settings, BUILD, target="prod", as_of_date=NEXT_NIGHT)
    later = _features(settings, NEXT_NIGHT).set_index("customer_id")
    assert later.loc["re_segmented", "segment"] == "wholesale"
    assert later.loc["sale_arrived_late", "days_since_last_sale"] == 11
    assert _features(settings, NIGHT).equals(at_the_time)


def test_an_extract_older_than_the_newest_sighting_is_refused(make_database):
    settings = make_database("sightings_older")
    _load_first_extract(settings)
    _execute(settings, NEWER_EXTRACT)
    dbt_runner.run(settings, BUILD, target="prod", as_of_date=NEXT_NIGHT)
    _execute(settings, FIRST_EXTRACT)
    with pytest.raises(dbt_runner.DbtFailure, match=(
        r"master data's newest load covers night 2026-03-01, older than the newest night the snapshots have seen "
        r"\(2026-03-09, UTC\).*Load an extract made after 2026-03-09 ended"
    )):
        dbt_runner.run(settings, BUILD, target="prod", as_of_date=NIGHT)
