"""The nightly flow end to end on a real Postgres, dbt and MLflow, and how it fails.

The tests run in order over one small warehouse: the first night (the rule baseline
labels, a first version is trained and approved for its canary), a failure after scoring started, a retry of a failed run, a failing source
test, and two runs at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date, timedelta

import pytest

from custlabel.config import Settings, get_settings
from custlabel.monitoring.headline_figures import MARTS
from custlabel.scoring import writeback
from custlabel.training import registry
from custlabel.warehouse import db, locking

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT1 = date(2026, 6, 30)  # the demo data's last day (DEMO_END in conftest.py)
NIGHT2 = NIGHT1 + timedelta(days=1)
FIRST_NIGHT_STEPS = [
    "source freshness", "dbt build", "monitoring", "release", "score and publish", "monitoring refresh",
    "monitoring report", "triggers", "train", "validate", "release state",
]
QUARANTINE_BOUND_TEST = "assert_quarantine_rate_within_bound"


def fetch(settings: Settings, query: str, params: list | None = None) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute(query, params).fetchall()


def published(settings: Settings) -> tuple:
    """What BI sees: rows, the night, the model, and a checksum of every label and score."""
    return fetch(
        settings,
        "select count(*), min(as_of_date), max(as_of_date), string_agg(distinct model_version, ','),"
        " md5(string_agg(customer_id || label || score::text, ',' order by customer_id))"
        " from analytics.customer_labels",
    )[0]


def history_nights(settings: Settings) -> dict[date, int]:
    return dict(fetch(settings, "select as_of_date, count(*) from analytics.customer_label_history group by 1"))


def record_run_id(state) -> str:
    return str(state.state_details.flow_run_id)


def run_row(settings: Settings, state) -> dict:
    cursor_rows = fetch(
        settings,
        "select outcome, attempts, steps, model_version, rows_labelled, error, summary from analytics.pipeline_runs"
        " where run_id = %s",
        [str(state.state_details.flow_run_id)],
    )
    assert len(cursor_rows) == 1
    outcome, attempts, steps, version, rows, error, summary = cursor_rows[0]
    return {"outcome": outcome, "attempts": attempts, "steps": steps, "model_version": version,
            "rows_labelled": rows, "error": error, "summary": summary}


@pytest.fixture(scope="module")
def flow(harness):
    from custlabel.nightly import serving

    return serving.load_flow(get_settings())


@pytest.fixture(scope="module")
def first_night(flow, flow_settings):
    """Night one on an empty registry: the rule baseline labels; a version is trained, validated and auto-approved."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUSTLABEL_AUTO_APPROVE", "1")
        return flow(as_of_date=NIGHT1, target="prod", return_state=True)


def test_first_night_labels_with_the_rule_and_trains_a_version_for_its_canary(first_night, flow_settings):
    assert first_night.is_completed(), first_night.message
    summary = first_night.result()
    assert registry.alias_versions(flow_settings) == {"challenger": "1"}
    assert registry.version_tags(flow_settings)["1"]["approval_status"] == "approved"
    eligible = fetch(flow_settings, "select count(*) from analytics.customer_features_current")[0][0]
    rows, night, _, versions, _ = published(flow_settings)
    assert (rows, night, versions) == (eligible, NIGHT1, "unregistered")
    record = run_row(flow_settings, first_night)
    assert record["outcome"] == "succeeded"
    assert [step["name"] for step in record["steps"]] == FIRST_NIGHT_STEPS
    assert {step["state"] for step in record["steps"]} == {"completed"}
    assert (record["model_version"], record["rows_labelled"]) == ("unregistered", eligible)
    assert f"labels: {eligible:,} customers as of {NIGHT1}" in summary
    assert "quarantine by reason: duplicate_sale" in summary
    assert "realized precision: no scored night has a matured outcome window yet" in summary


def test_a_dbt_warning_does_not_stop_the_run(first_night, flow_settings):
    build = next(step for step in run_row(flow_settings, first_night)["steps"] if step["name"] == "dbt build")
    assert build["state"] == "completed"
    assert "warnings:" in build["detail"]
    assert "expect_column_values_to_be_in_set_master_data_sales_status" in build["detail"]


def test_monitoring_marts_are_there_from_night_one(first_night, flow_settings):
    counts = dict(fetch(flow_settings, "select 'customers', count(*) from master_data.customers"
                                       " union all select 'sales', count(*) from master_data.sales"))
    quarantined = dict(fetch(flow_settings, "select source_table, count(*) from analytics.master_data_quarantine group by 1"))
    volumes = fetch(flow_settings, "select source_table, source_rows, quarantined_rows"
                                   " from analytics_monitoring.source_volumes where as_of_date = %s", [NIGHT1])
    assert {table: (rows, held) for table, rows, held in volumes} == {t: (n, quarantined.get(t, 0)) for t, n in counts.items()}
    by_reason = fetch(flow_settings, "select sum(quarantined_rows) from analytics_monitoring.quarantine_reasons"
                                     " where as_of_date = %s", [NIGHT1])
    assert by_reason[0][0] == sum(quarantined.values())
    rates = fetch(flow_settings, "select model_name, model_version, customers from analytics_monitoring.label_rates"
                                 " where as_of_date = %s", [NIGHT1])
    assert rates == [("rule-baseline", "unregistered", published(flow_settings)[0])]
    for mart in MARTS:
        assert fetch(flow_settings, "select to_regclass(%s) is not null", [f"analytics_monitoring.{mart}"])[0][0], mart


@pytest.fixture
def crash_once_after_publish(monkeypatch):
    """publish() does its work inside the transaction, then the process 'crashes' (first call only)."""
    real, calls = writeback.publish, []

    def publish(conn, schema, as_of_date, wait):
        calls.append(as_of_date)
        real(conn, schema, as_of_date, wait)
        if len(calls) == 1:
            raise writeback.WriteBackError("simulated crash after the swap, before the commit")

    monkeypatch.setattr(writeback, "publish", publish)
    return calls


def test_a_failure_after_scoring_started_leaves_the_previous_labels(first_night, flow, flow_settings, crash_once_after_publish):
    before = published(flow_settings)
    state = flow(as_of_date=NIGHT2, target="prod", return_state=True)
    assert state.is_failed()
    assert "simulated crash" in state.message
    assert published(flow_settings) == before
    assert NIGHT2 not in history_nights(flow_settings)
    record = run_row(flow_settings, state)
    assert record["outcome"] == "failed" and "simulated crash" in record["error"]
    assert [(s["name"], s["state"]) for s in record["steps"]][-1] == ("score and publish", "failed")


def test_a_retried_run_does_only_the_remaining_work(first_night, flow, flow_settings, crash_once_after_publish):
    state = flow.with_options(retries=1)(as_of_date=NIGHT2, target="prod", return_state=True)
    assert state.is_completed(), state.message
    record = run_row(flow_settings, state)
    assert (record["outcome"], record["attempts"]) == ("succeeded", 2)
    steps = {(s["attempt"], s["name"]): s["state"] for s in record["steps"]}
    assert steps[(1, "dbt build")] == "completed" and steps[(1, "score and publish")] == "failed"
    assert steps[(2, "source freshness")] == steps[(2, "dbt build")] == "cached"
    assert steps[(2, "score and publish")] == "completed"
    eligible = fetch(flow_settings, "select count(*) from analytics.customer_features where as_of_date = %s", [NIGHT2])[0][0]
    assert history_nights(flow_settings)[NIGHT2] == eligible == record["rows_labelled"]
    assert published(flow_settings)[:3] == (eligible, NIGHT2, NIGHT2)


@pytest.fixture
def customers_without_id(flow_settings):
    """A null id is a warning (the row is quarantined); a tenth of the customers without one stops the build."""
    with db.connect(flow_settings) as conn:
        conn.execute(
            "insert into master_data.customers (customer_id, created_at, updated_at)"
            " select null, now(), now() from generate_series(1, (select count(*) / 10 from master_data.customers))"
        )
    yield
    with db.connect(flow_settings) as conn:
        conn.execute("delete from master_data.customers where customer_id is null")


def test_too_many_bad_source_rows_stop_the_build_before_scoring(first_night, flow, flow_settings, customers_without_id):
    before = published(flow_settings)
    state = flow(as_of_date=NIGHT2, target="prod", return_state=True)
    assert state.is_failed()
    assert QUARANTINE_BOUND_TEST in state.message
    record = run_row(flow_settings, state)
    assert [(s["name"], s["state"]) for s in record["steps"]] == [("source freshness", "completed"), ("dbt build", "failed")]
    assert QUARANTINE_BOUND_TEST in record["error"]
    assert published(flow_settings) == before
    # the failed build's test results are kept for the data-quality history
    kept = fetch(flow_settings, "select status, failures from analytics_monitoring.dbt_test_results"
                                " where run_id = %s and test_name = %s", [record_run_id(state), QUARANTINE_BOUND_TEST])
    assert kept == [("fail", 1)]


def test_a_nights_build_runs_the_data_tests_and_leaves_the_unit_tests_to_the_test_environment(first_night, flow_settings):
    """dbt's unit tests prove the code on fixed inputs: they run where the code changes, not each night."""
    kinds = dict(fetch(flow_settings, "select test_kind, count(*) from analytics_monitoring.dbt_test_results"
                                      " where as_of_date = %s group by 1", [NIGHT1]))
    assert kinds.get("data_test", 0) > 100 and "unit_test" not in kinds, kinds


def _lock_holders(settings: Settings) -> int:
    return fetch(settings, "select count(*) from pg_stat_activity where application_name like %s",
                 [f"{locking.APPLICATION_PREFIX}%"])[0][0]


def test_the_second_of_two_concurrent_runs_stops_with_a_clear_message(first_night, flow, flow_settings, tmp_path):
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(tmp_path)}
    first = subprocess.Popen(
        [sys.executable, "-m", "custlabel.cli", "nightly", "--as-of", str(NIGHT2), "--target", "prod"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _lock_holders(flow_settings) == 0:
            assert first.poll() is None, first.stdout.read()
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.5)
        rows_before = fetch(flow_settings, "select count(*) from analytics.pipeline_runs")[0][0]
        second = flow(as_of_date=NIGHT2, target="prod", return_state=True)
        assert second.is_failed()
        assert "another nightly run for analytics is in progress: custlabel nightly" in second.message
        assert fetch(flow_settings, "select count(*) from analytics.pipeline_runs")[0][0] == rows_before
        output, _ = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, output
    eligible = fetch(flow_settings, "select count(*) from analytics.customer_features where as_of_date = %s", [NIGHT2])[0][0]
    assert history_nights(flow_settings)[NIGHT2] == eligible
