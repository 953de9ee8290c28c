"""A step that hangs: its timeout stops it, the run ends Failed and releases its lock, the next run completes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import pytest

from custlabel.config import Settings, get_settings
from custlabel.nightly import night_steps, serving
from custlabel.warehouse import db, locking
from helpers.demo_warehouse import flow_demo
from helpers.night_config import ONE_FAMILY

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

NIGHT = date(2026, 6, 30)
STEP_TIMEOUT = 5


@pytest.fixture(scope="module")
def flow_settings(make_database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = make_database("faults_hung", demo=flow_demo(NIGHT))
    local = tmp_path_factory.mktemp("faults-hung")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGDATABASE", settings.connection.dbname)
        patch.setenv("CUSTLABEL_LOCAL_DIR", str(local))
        patch.setenv("CUSTLABEL_TARGET", "prod")
        for variable, value in ONE_FAMILY.items():
            patch.setenv(variable, value)
        from prefect.testing.utilities import prefect_test_harness

        with serving.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
            yield get_settings()


def _hang(_night: night_steps.Night) -> None:
    time.sleep(600)


def test_a_hung_step_is_stopped_releases_the_lock_and_the_next_night_runs(flow_settings: Settings, figures) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUSTLABEL_STEP_TIMEOUT_SECONDS", str(STEP_TIMEOUT))
        patch.setattr(night_steps, "check_freshness", _hang)
        hurried = serving.load_flow(get_settings())
        started = time.monotonic()
        hung = hurried(as_of_date=NIGHT, target="prod", return_state=True)
        stopped_after = time.monotonic() - started
    assert hung.is_failed()
    with db.connect(flow_settings) as conn:
        held = conn.execute("select count(*) from pg_locks where locktype = 'advisory' and granted").fetchone()[0]
        record = conn.execute("select outcome, error from analytics.pipeline_runs where run_id = %s",
                              [str(hung.state_details.flow_run_id)]).fetchone()
    assert held == 0
    assert record[0] == "failed" and "timed out after 5.0 second(s)" in record[1], record
    with locking.hold(flow_settings, "analytics", owner="the next night"):
        pass
    started = time.monotonic()
    next_night = serving.load_flow(get_settings())(as_of_date=NIGHT, target="prod", return_state=True)
    next_seconds = time.monotonic() - started
    assert next_night.is_completed(), next_night.message
    figures.extend([
        ("a step hangs (timeout 5 s)", "run stopped after / lock held after", f"{stopped_after:.1f} s / {held} locks"),
        ("a step hangs (timeout 5 s)", "next night", f"completed in {next_seconds:.0f} s"),
    ])
