"""A company's first night: two CSV files loaded now, `custlabel nightly` with its defaults, yesterday labelled."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from prefect.testing.utilities import prefect_test_harness

from custlabel.config import get_settings
from custlabel.nightly import serving
from custlabel.warehouse import db, load
from helpers.flow_world import flow_world
from helpers.night_config import SMALL_SEARCH

pytestmark = [pytest.mark.integration, pytest.mark.slow]


CONTRACT = {
    "customers": "customer_id, created_at, updated_at, country, segment, birth_date, gender",
    "sales": "sale_id, customer_id, sold_at, quantity, amount, status, status_changed_at, due_at, paid_at, channel,"
             " recorded_at, updated_at",
}


def test_files_loaded_this_morning_label_last_night_with_the_defaults(make_database, tmp_path):
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date()
    with flow_world(make_database, "first_night", yesterday, tmp_path / "local") as patch:
        settings = get_settings()
        with db.connect(settings) as conn:  # the company's export: the contract columns, no load time
            for table, columns in CONTRACT.items():
                with (tmp_path / f"{table}.csv").open("wb") as file, conn.cursor().copy(
                    f"copy (select {columns} from master_data.{table}) to stdout with (format csv, header)"
                ) as copy:
                    for chunk in copy:
                        file.write(chunk)
        loaded = load.load(settings, {table: tmp_path / f"{table}.csv" for table in CONTRACT},
                           i_mean_database=settings.connection.dbname)
        assert loaded.rows["customers"] >= 2_000, "the demo's messy duplicates included"
        for variable, value in SMALL_SEARCH.items():
            patch.setenv(variable, value)
        with serving.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
            summary = serving.run_once(get_settings())
    assert f"for {yesterday}, target prod" in summary
    # Monitoring judges the load itself (loaded_at), made moments before the run: not the business updated_at.
    ages = [float(age) for age in re.findall(r"newest load (\d+\.\d) h old when judged", summary)]
    assert len(ages) == 2 and max(ages) < 1, summary
    labelled = db.read_frame(settings, "select as_of_date, count(*) as customers from analytics.customer_labels group by 1",
                             None)
    assert labelled["as_of_date"].tolist() == [yesterday] and labelled["customers"][0] > 1_000
