"""Monitoring over a simulated season: the nightly flow night after night on the demo world, drift injected from a chosen night.

Nights are 30 days apart, so outcome windows (90 days) mature three nights after
they were scored and the estimated precision meets the realized one. From
DRIFT_NIGHT on, the source system writes sale amounts in cents (every new sale's
amount times 100): the revenue features drift, and a feature drift rule (k of the
last n nights) must fire k - 1 nights later and not before.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from custlabel.config import get_settings
from custlabel.demo import simulation as simulate
from custlabel.monitoring import alerts
from custlabel.nightly import serving
from custlabel.release import registration
from custlabel.training import model_search
from custlabel.warehouse import db, dbt_runner
from helpers.demo_warehouse import DemoData
from helpers.release_path import approve_and_promote

pytestmark = [pytest.mark.integration, pytest.mark.slow]

END = date(2026, 6, 30)
DAYS_PER_NIGHT = 30
NIGHTS = 6
DRIFT_NIGHT = 4  # the first simulated night whose new sales carry amounts in cents
CUSTOMERS = 2_000
# The held-out version labels here: the refit on every matured night estimated the first
# matured night's precision 6.6 points above the realized (0.766 against 0.700), past the
# bound below, while the held-out version stays within it; see the model-quality issue.
SMALL_TRAINING = model_search.TrainConfig(search_iterations=1, max_folds=2, n_jobs=1, refit=False)
WRITTEN_TABLE = "create table if not exists demo_truth.sales_written (sale_id text primary key)"
# Sales already written (and checked by a build) keep their amounts: only the ones
# that arrive from DRIFT_NIGHT on are in cents.
WRITTEN_BEFORE_CENTS = """
insert into demo_truth.sales_written
select distinct sale_id from master_data.sales where sale_id is not null on conflict do nothing
"""
CENTS = """
with changed as (
    update master_data.sales as s set amount = s.amount * 100
    where s.sale_id is not null
      and not exists (select 1 from demo_truth.sales_written as w where w.sale_id = s.sale_id)
    returning s.sale_id
)
insert into demo_truth.sales_written select distinct sale_id from changed
"""


def frame(settings, query: str, params: dict | None = None) -> pd.DataFrame:
    return db.read_frame(settings, query, params)


@pytest.fixture(scope="module")
def season(make_database, tmp_path_factory):
    """A champion with its reference bins, then NIGHTS simulated nights through the nightly flow."""
    from prefect.testing.utilities import prefect_test_harness

    database = make_database("monitoring_season", demo=DemoData(customers=CUSTOMERS, days=540, seed=5, end_date=END))
    local = tmp_path_factory.mktemp("monitoring-season")
    name = database.connection.dbname
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGDATABASE", database.connection.dbname)
        patch.setenv("CUSTLABEL_LOCAL_DIR", str(local))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{local / 'mlflow.db'}")
        patch.setenv("CUSTLABEL_TARGET", "prod")
        settings = get_settings()
        dbt_runner.run(settings, ["build"], target="prod", as_of_date=str(END))
        approve_and_promote(settings, registration.train_and_register(settings, SMALL_TRAINING).version)
        nights = [END]
        with serving.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
            serving.run_once(as_of_date=END, target="prod", settings=settings)
            for number in range(1, NIGHTS + 1):
                if number == DRIFT_NIGHT:
                    with db.connect(settings) as conn:
                        conn.execute(WRITTEN_TABLE)
                        conn.execute(WRITTEN_BEFORE_CENTS)
                night = simulate.advance(settings, days=DAYS_PER_NIGHT, seed=5, i_mean_database=name).night
                if number >= DRIFT_NIGHT:
                    with db.connect(settings) as conn:
                        conn.execute(CENTS)
                serving.run_once(as_of_date=night, target="prod", settings=settings)
                nights.append(night)
        yield settings, nights, local


def test_the_repository_drift_rule_fires_once_cents_arrive(season):
    settings, nights, _ = season
    firing = frame(settings, "select as_of_date from analytics_monitoring.alerts"
                             " where rule = 'feature_drift' and state = 'firing' order by 1")
    assert list(firing["as_of_date"])[-2:] == nights[-2:]


def test_the_drift_alert_fires_k_nights_into_the_drift_and_not_before(season):
    settings, nights, _ = season
    drift = frame(settings, "select as_of_date, max(psi_since_first_night) as shift from analytics_monitoring.feature_drift"
                            " where feature_kind <> 'sensitive' group by 1 order by 1")
    print(drift.to_string())
    # The simulated world drifts by itself too (payment delays lengthen: PSI 0.26 three
    # nights in); cents move the revenue features by a PSI above 3. The rule's
    # threshold sits between the two, as an ML engineer would set it for this world.
    rule = alerts.Rule(name="cents_drift", metric="feature_shift_max", direction="above", threshold=1.0, k=2, n=3)
    states = [alerts.evaluate(settings, "analytics", night, alerts.AlertConfig(rules=[rule]))[0] for night in nights]
    firing = [alert.as_of_date for alert in states if alert.state == alerts.FIRING]
    assert firing == nights[DRIFT_NIGHT + rule.k - 1 :], [(a.as_of_date, a.value, a.state) for a in states]
    assert all(alert.value < rule.threshold for alert in states[:DRIFT_NIGHT])
    assert states[DRIFT_NIGHT].value > 3 * rule.threshold


def test_the_estimated_precision_tracks_the_realized_once_windows_mature(season):
    settings, nights, _ = season
    compared = frame(settings, "select as_of_date, estimated_precision, realized_precision, precision_error,"
                               " estimated_recall, realized_recall from analytics_monitoring.estimated_vs_realized"
                               " where matured order by as_of_date")
    print(compared.to_string())
    # A window matures once its last day is over, both on the last simulated night and at run time.
    last_matured_end = min(nights[-1], date.today() - timedelta(days=1))
    assert list(compared["as_of_date"]) == [night for night in nights if night + timedelta(days=90) <= last_matured_end]
    assert len(compared) >= 3
    assert compared["precision_error"].abs().max() < 0.06


def test_the_run_summary_links_the_report_and_lists_firing_alerts(season):
    settings, nights, local = season
    summary = frame(settings, "select summary from analytics.pipeline_runs where as_of_date = :night"
                              " order by started_at desc limit 1", {"night": nights[-1]})["summary"].iloc[0]
    report = summary["monitoring"]["report"]
    assert report == str(local / "reports" / f"monitoring-analytics-{nights[-1]}.html")
    assert any(line.startswith("feature_drift firing") for line in summary["monitoring"]["alerts"])
    tests = frame(settings, "select as_of_date, tests_run, tests_failed from analytics_monitoring.data_test_trends")
    assert set(tests["as_of_date"]) == set(nights) and (tests["tests_run"] > 50).all()
