"""Source freshness on load time, judged at the night built, with the data's real dates in every message."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from custlabel import db, dbt, load
from custlabel.config import Settings

# A customer whose business record last changed a year before the load, and recent sales.
CUSTOMERS_CSV = "customer_id,created_at,updated_at\nc1,2025-01-10,2025-11-24 12:00\nc2,2025-02-01,2025-03-01\n"
SALES_CSV = (
    "sale_id,customer_id,sold_at,quantity,amount,status,updated_at,recorded_at\n"
    "s1,c1,2026-06-28,1,10,completed,2026-06-28,2026-06-29 08:00\n"
    "s2,c2,2026-06-30 09:00,1,12,completed,2026-06-30,\n"
)


@pytest.fixture(scope="module")
def loaded(make_database, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = make_database("custlabel_freshness")
    folder: Path = tmp_path_factory.mktemp("freshness")
    (folder / "customers.csv").write_text(CUSTOMERS_CSV)
    (folder / "sales.csv").write_text(SALES_CSV)
    load.load(
        {"customers": folder / "customers.csv", "sales": folder / "sales.csv"},
        i_mean_database=settings.connection.dbname, settings=settings,
    )
    return settings


def _set_load_time(settings: Settings, value: str | None) -> None:
    with db.connect(settings) as conn:
        for table in ("customers", "sales"):
            conn.execute(f"update master_data.{table} set loaded_at = %s", [value])


def test_a_fresh_load_is_fresh_whatever_the_business_updated_at(loaded: Settings) -> None:
    _set_load_time(loaded, None)
    with pytest.raises(dbt.DbtFailure, match="customers: stale: last loaded 2025-11-24 12:00"):
        dbt.run(["source", "freshness"], as_of_date=date.today().isoformat(), settings=loaded)
    _set_load_time(loaded, "now")
    result = dbt.run(["source", "freshness"], as_of_date=date.today().isoformat(), settings=loaded)
    assert result.nodes == 2 and result.warnings == []


def test_a_replay_is_judged_at_its_night_with_real_dates(loaded: Settings) -> None:
    _set_load_time(loaded, "2026-06-30 12:00+00")
    dbt.run(["source", "freshness"], as_of_date="2026-07-01", settings=loaded)
    with pytest.raises(dbt.DbtFailure) as raised:
        dbt.run(["source", "freshness"], as_of_date="2026-07-10", settings=loaded)
    assert "customers: stale: last loaded 2026-06-30 12:00, 10.5 days before 2026-07-11 00:00 UTC" in str(raised.value)
    # Rows loaded after the night do not count for it.
    with pytest.raises(dbt.DbtFailure, match="sales: stale: nothing loaded by 2026-06-30 00:00 UTC"):
        dbt.run(["source", "freshness"], as_of_date="2026-06-29", settings=loaded)


def test_thresholds_per_source_and_a_replay_downgrade_come_from_vars(loaded: Settings) -> None:
    _set_load_time(loaded, "2026-06-30 12:00+00")
    with pytest.raises(dbt.DbtFailure) as raised:
        dbt.run(["source", "freshness", "--vars", "{sales_error_after_days: 30}"], as_of_date="2026-07-10", settings=loaded)
    assert "customers: stale" in str(raised.value) and "sales:" not in str(raised.value)
    result = dbt.run(["source", "freshness"], as_of_date="2026-07-10", extra_vars={"freshness": "warn"}, settings=loaded)
    warnings = sorted(result.warnings)
    assert [warning.split(":")[0] for warning in warnings] == ["customers", "sales"]
    assert "10.5 days before 2026-07-11 00:00 UTC" in warnings[0]
    assert dbt.run(["source", "freshness", "--vars", "{freshness: skip}"], as_of_date="2026-07-10", settings=loaded).nodes == 0


def test_the_data_age_test_judges_the_night_being_built(loaded: Settings) -> None:
    select = ["test", "--select", "source:master_data.sales,test_name:recent_data_at_night"]
    assert dbt.run(select, as_of_date="2026-07-02", settings=loaded).warnings == []
    late = dbt.run(select, as_of_date="2026-07-20", settings=loaded).warnings
    assert len(late) == 1 and late[0].startswith("source_recent_data_at_night_master_data_sales"), late
