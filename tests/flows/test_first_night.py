"""A company's first night: two CSV files loaded now, `custlabel nightly` with its defaults, yesterday labelled."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from prefect.testing.utilities import prefect_test_harness

from custlabel import db, load, nightly, train

from helpers.flow_world import flow_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL_TRAINING = train.TrainConfig(search_iterations=1, max_folds=2, n_jobs=1)

CONTRACT = {
    "customers": "customer_id, created_at, updated_at, country, segment, birth_date, gender",
    "sales": "sale_id, customer_id, sold_at, quantity, amount, status, status_changed_at, due_at, paid_at, channel,"
             " recorded_at, updated_at",
}


def test_files_loaded_this_morning_label_last_night_with_the_defaults(make_database, tmp_path):
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date()
    with flow_world(make_database, "first_night", yesterday, tmp_path / "local") as patch:
        settings = nightly.get_settings()
        with db.connect(settings) as conn:  # the company's export: the contract columns, no load time
            for table, columns in CONTRACT.items():
                with (tmp_path / f"{table}.csv").open("wb") as file, conn.cursor().copy(
                    f"copy (select {columns} from master_data.{table}) to stdout with (format csv, header)"
                ) as copy:
                    for chunk in copy:
                        file.write(chunk)
        loaded = load.load({table: tmp_path / f"{table}.csv" for table in CONTRACT},
                           i_mean_database=settings.connection.dbname, settings=settings)
        assert loaded.rows["customers"] >= 2_000, "the demo's messy duplicates included"
        patch.setattr(nightly, "TRAIN_CONFIG", SMALL_TRAINING)
        with nightly.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
            summary = nightly.run_once()
    assert f"for {yesterday}, target prod" in summary
    # Monitoring judges the load itself (loaded_at), made moments before the run: not the business updated_at.
    ages = [float(age) for age in re.findall(r"newest load (\d+\.\d) h old when judged", summary)]
    assert len(ages) == 2 and max(ages) < 1, summary
    labelled = db.read_frame("select as_of_date, count(*) as customers from analytics.customer_labels group by 1",
                             None, settings)
    assert labelled["as_of_date"].tolist() == [yesterday] and labelled["customers"][0] > 1_000
