"""Source freshness: a night is fresh when the newest load was made after it ended, in the company's time zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from custlabel.config import Settings
from custlabel.warehouse import db, dbt_runner, freshness, load

pytestmark = pytest.mark.integration

# A customer whose business record last changed a year before the load, and recent sales.
CUSTOMERS_CSV = "customer_id,created_at,updated_at\nc1,2025-01-10,2025-11-24 12:00\nc2,2025-02-01,2025-03-01\n"
SALES_CSV = (
    "sale_id,customer_id,sold_at,quantity,amount,status,updated_at,recorded_at\n"
    "s1,c1,2026-06-28,1,10,completed,2026-06-28,2026-06-29 08:00\n"
    "s2,c2,2026-06-30 09:00,1,12,completed,2026-06-30,\n"
)
YESTERDAY = (datetime.now(timezone.utc) - timedelta(days=1)).date()


@pytest.fixture(scope="module")
def loaded(make_database, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = make_database("custlabel_freshness")
    folder: Path = tmp_path_factory.mktemp("freshness")
    (folder / "customers.csv").write_text(CUSTOMERS_CSV)
    (folder / "sales.csv").write_text(SALES_CSV)
    load.load(
        settings, {"customers": folder / "customers.csv", "sales": folder / "sales.csv"},
        i_mean_database=settings.connection.dbname,
    )
    return settings


def _set_load_time(settings: Settings, value: str | None) -> None:
    with db.connect(settings) as conn:
        for table in ("customers", "sales"):
            conn.execute(f"update master_data.{table} set loaded_at = %s", [value])


def test_a_load_made_now_covers_last_night_whatever_the_business_dates(loaded: Settings) -> None:
    _set_load_time(loaded, "now")
    assert freshness.check(loaded, YESTERDAY) == freshness.Checked(2, [])
    result = dbt_runner.run(loaded, ["source", "freshness"], as_of_date=YESTERDAY.isoformat())
    assert result.nodes == 2 and result.warnings == []


def test_a_load_made_before_the_night_ended_stops_the_night_naming_it_the_zone_and_the_fix(loaded: Settings) -> None:
    _set_load_time(loaded, f"{YESTERDAY} 18:05+00")
    with pytest.raises(freshness.StaleSourceError) as raised:
        freshness.check(loaded, YESTERDAY)
    assert str(raised.value) == (
        f"customers: stale for night {YESTERDAY} (UTC, ended {YESTERDAY + timedelta(days=1)} 00:00 UTC): "
        f"newest load {YESTERDAY} 18:05 UTC was made before the night ended; "
        f"sales: stale for night {YESTERDAY} (UTC, ended {YESTERDAY + timedelta(days=1)} 00:00 UTC): "
        f"newest load {YESTERDAY} 18:05 UTC was made before the night ended. "
        "Load an extract made after the night ended: custlabel load --customers customers.csv --sales sales.csv "
        "(or run this night with --vars '{freshness: warn}')"
    )
    with pytest.raises(dbt_runner.DbtFailure, match="customers: stale: nothing loaded after the night ended"):
        dbt_runner.run(loaded, ["source", "freshness"], as_of_date=YESTERDAY.isoformat())
    warned = freshness.check(loaded, YESTERDAY, {"freshness": "warn"}).warnings
    assert [warning.split(":")[0] for warning in warned] == ["customers", "sales"]
    assert freshness.check(loaded, YESTERDAY, {"freshness": "skip"}) == freshness.Checked(0, [])


def test_a_replay_on_a_newer_extract_is_fresh_without_any_var(loaded: Settings) -> None:
    _set_load_time(loaded, "now")
    assert freshness.check(loaded, date(2026, 7, 10)).warnings == []
    assert dbt_runner.run(loaded, ["source", "freshness"], as_of_date="2026-07-10").warnings == []
    _set_load_time(loaded, "2026-07-05 12:00+00")
    with pytest.raises(freshness.StaleSourceError, match="sales: stale for night 2026-07-10 .UTC"):
        freshness.check(loaded, date(2026, 7, 10))


def test_the_night_ends_in_the_company_time_zone(loaded: Settings) -> None:
    # 16:00 UTC is already the next day in Tokyo (01:00): the load covers Tokyo's night, not London's.
    _set_load_time(loaded, f"{YESTERDAY} 16:00+00")
    now = datetime.combine(YESTERDAY, datetime.min.time(), timezone.utc) + timedelta(hours=17)
    with pytest.raises(freshness.StaleSourceError):
        freshness.check(loaded, YESTERDAY, now=now)
    tokyo = replace(loaded, timezone="Asia/Tokyo")
    assert freshness.check(tokyo, YESTERDAY, now=now).warnings == []


def test_a_view_without_load_times_is_judged_on_its_newest_change(loaded: Settings) -> None:
    _set_load_time(loaded, None)
    with pytest.raises(freshness.StaleSourceError, match=r"customers: stale for night 2026-07-01 .*newest change \(updated_at"):
        freshness.check(loaded, date(2026, 7, 1))
    assert freshness.check(loaded, date(2026, 7, 1), {"customers_error_after_days": None}).warnings[0].startswith("customers:")


def test_the_data_age_test_judges_the_night_being_built(loaded: Settings) -> None:
    select = ["test", "--select", "source:master_data.sales,test_name:recent_data_at_night"]
    assert dbt_runner.run(loaded, select, as_of_date="2026-07-02").warnings == []
    late = dbt_runner.run(loaded, select, as_of_date="2026-07-20").warnings
    assert len(late) == 1 and late[0].startswith("source_recent_data_at_night_master_data_sales"), late
