"""The same world gives the same marts: dedups break every tie, money is summed exactly."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from custlabel.config import DEFAULT_PROJECT_DIR, Settings
from custlabel.demo import loader
from custlabel.warehouse import db, dbt_runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 4, 1)

# A customer whose only sales are ten of 0.10: in float the sum is 0.9999999999999999.
TEN_DIMES = """
insert into master_data.customers (customer_id, created_at, updated_at, country, segment, birth_date, gender)
select 'ten-dimes', created_at, updated_at, country, segment, birth_date, gender
from master_data.customers order by customer_id limit 1;

insert into master_data.sales (sale_id, customer_id, sold_at, quantity, amount, status, due_at, paid_at,
    channel, recorded_at, updated_at)
select 'dime-' || n, 'ten-dimes', timestamptz '2026-03-20 10:00+00' + n * interval '1 minute', 1, 0.10,
    'completed', date '2026-03-25', timestamptz '2026-03-21 10:00+00', 'web',
    timestamptz '2026-03-20 10:00+00' + n * interval '1 minute', timestamptz '2026-03-21 10:00+00'
from generate_series(1, 10) as n;
"""

# The same rows, stored in the opposite physical order: scans and sorts meet ties the other way round.
REVERSED = """
create temporary table reversed_sales as select * from master_data.sales order by sale_id desc;
create temporary table reversed_customers as select * from master_data.customers order by customer_id desc;
truncate master_data.sales, master_data.customers;
insert into master_data.sales select * from reversed_sales;
insert into master_data.customers select * from reversed_customers;
"""

# Marts that read the run's clock: hours since the last load, and the runs' own test results.
CLOCK_READING = {"source_volumes", "data_quality_trends", "data_test_trends"}


def _marts() -> list[str]:
    """The marts stored in the warehouse (not ephemeral) that do not read the run's clock."""
    paths = Path(DEFAULT_PROJECT_DIR, "models", "marts").rglob("*.sql")
    stored = {path.stem for path in paths if "materialized='ephemeral'" not in path.read_text()}
    return sorted(stored - CLOCK_READING)


def _fingerprints(settings: Settings) -> dict[str, str]:
    """Each mart's rows as text, sorted, hashed: equal only when every value is equal to the bit."""
    relations = db.read_frame(
        settings, "select table_schema, table_name from information_schema.tables"
        " where table_schema like 'analytics%' and table_name = any(:marts) order by table_name",
        {"marts": _marts()},
    )
    assert len(relations) == len(_marts())
    fingerprints = {}
    for schema, mart in relations.itertuples(index=False):
        row = db.read_frame(
            settings, f"select count(*) as n, md5(coalesce(string_agg(t::text, '|' order by t::text), '')) as digest"
            f" from {schema}.{mart} as t",
            None,
        ).iloc[0]
        fingerprints[mart] = f"{row['n']} rows, {row['digest']}"
    return fingerprints


def _build(make_database, name: str, reorder: bool) -> Settings:
    settings = make_database(name)
    loader.generate_and_load(customers=150, days=400, seed=21, end_date=NIGHT, settings=settings, i_mean_database=settings.connection.dbname)
    with db.connect(settings) as conn:
        conn.execute(TEN_DIMES)
        if reorder:
            conn.execute(REVERSED)
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=NIGHT)
    return settings


@pytest.fixture(scope="module")
def two_builds(make_database) -> tuple[Settings, Settings]:
    """The same world built twice, its rows stored in opposite orders."""
    return _build(make_database, "same_world_a", reorder=False), _build(make_database, "same_world_b", reorder=True)


def test_the_same_world_built_twice_gives_every_mart_byte_for_byte(two_builds):
    first, second = two_builds
    expected = _fingerprints(first)
    assert not expected["customer_features"].startswith("0 rows")
    assert _fingerprints(second) == expected


def test_money_is_summed_exactly_and_cast_once(two_builds):
    first, _ = two_builds
    dimes = db.read_frame(
        first, "select revenue_30d, revenue_365d, avg_sale_amount_365d from analytics.customer_features"
        " where customer_id = 'ten-dimes' and as_of_date = :night",
        {"night": NIGHT},
    )
    assert dimes.iloc[0].to_dict() == {"revenue_30d": 1.0, "revenue_365d": 1.0, "avg_sale_amount_365d": 0.1}
