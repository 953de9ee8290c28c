"""`custlabel simulate` shows a model's whole lifecycle through the real nightly flow on a real Postgres (issue 13).

Five simulated nights on a small demo world: the rule baseline labels night one and
a version is trained and auto-approved; it is canaried and promoted; lost payments
(injected drift) fire the data trigger and a new challenger is trained; a wrongly
thresholded challenger approved by mistake is rolled back by its canary checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from custlabel import alerts, db, nightly, registry, release_policy, releases, train
from custlabel.config import Settings, get_settings
from custlabel.demo import simulation

from helpers.flow_world import flow_world

pytestmark = pytest.mark.integration

POLICY = release_policy.parse("""
canary: {percent: 10, nights: 1, max_bad_share_gap: 0.25, max_score_psi: 0.25, max_scoring_seconds: 900, max_precision_drop: 0.05}
triggers:
  data: {max_score_psi: 0.05, drift_nights: 1, window_nights: 1, min_new_matured_labels: 100000}
  performance: {min_customers_with_outcome: 100, estimated_margin: 0.2}
  age: {max_days: 365}
""")
# Drift rules that fire on the first drifting night, so that five nights show the whole
# lifecycle. The injected outage loses the payments of 30% of the customers: a drift well
# beyond what one day of this world does, yet within the label-rate check (60% moved the
# bad rate by 18 points: the night's labels were refused, as they should be).
ALERT_RULES = alerts.parse("""
rules:
  - {name: feature_drift, metric: feature_shift_max, direction: above, threshold: 0.06, k: 1, n: 1}
  - {name: score_drift, metric: score_psi, direction: above, threshold: 0.03, k: 1, n: 1}
""")


@pytest.fixture(scope="module")
def settings(make_database, tmp_path_factory) -> Iterator[Settings]:
    local = tmp_path_factory.mktemp("lifecycle-local")
    with flow_world(make_database, "lifecycle", date(2026, 6, 30), local) as patch:
        patch.setattr(nightly, "TRAIN_CONFIG", train.TrainConfig(search_iterations=1, max_folds=2, n_jobs=1))
        patch.setattr(nightly, "RELEASE_POLICY", POLICY)
        patch.setattr(nightly, "ALERT_RULES", ALERT_RULES)
        yield get_settings()


@pytest.fixture(scope="module")
def lifecycle(settings) -> list[str]:
    from prefect.testing.utilities import prefect_test_harness

    with nightly.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
        lines = list(simulation.run(5, target="prod", seed=3, settings=settings, i_mean_database=settings.connection.dbname,
                                    inject_drift_on=4, inject_bad_challenger_on=5, drift_share=0.3))
    print("\n".join(lines))
    print(db.read_frame("select as_of_date, rule, value, state from analytics_monitoring.alerts order by 1, 2",
                        settings=settings).to_string())
    return lines


def test_the_simulation_shows_the_whole_lifecycle(lifecycle, settings):
    first, canary, promoted, drifted, bad = lifecycle
    assert "labelled by rule-baseline vunregistered" in first
    assert "triggered (bootstrap; retrain)" in first and "trained v1" in first and "approved v1" in first
    assert "labelled by customer-labels v1" in canary and "canary_started v1" in canary and "promoted v1" in canary
    assert "labelled by customer-labels v1" in promoted and "triggered" not in promoted
    assert "injected drift" in drifted and "triggered (data:" in drifted and "trained v2" in drifted
    assert "injected bad challenger v3" in bad and "canary_started v3" in bad
    assert "rolled_back v3 (canary checks failed: canary_bad_share" in bad
    assert registry.alias_versions(settings)["champion"] == "1"
    kinds = [event.event for event in releases.history(settings) if not event.actor.startswith("simulation")]
    assert kinds.count("promoted") == 1 and kinds.count("rolled_back") == 1 and kinds.count("trained") == 2
