"""The release path through the real nightly flow on a real Postgres, dbt and MLflow registry (issue 13).

The tests run in order over one small warehouse of their own: night one (rule
baseline, bootstrap trigger, a version trained and auto-approved), its canary night
(promoted after one healthy night), a quiet night (no trigger, no training), a bad
challenger rolled back by its canary checks, a canary that cannot score rolled back,
`custlabel rollback`, the triggers
measured on the champion, and the loud fallback when the champion is gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from mlflow import MlflowClient

from custlabel import cli
from custlabel.config import Settings, get_settings
from custlabel.demo import simulation
from custlabel.gate_verdicts import GATES_PASSED_TAG
from custlabel.nightly import serving
from custlabel.release import (
    approval,
    lifecycle,
    release_log,
    release_policy,
    rollout,
    triggers,
)
from custlabel.scoring import canary_slice
from custlabel.training import model_families, registry
from custlabel.warehouse import db
from helpers.flow_world import flow_world
from helpers.night_config import SMALL_SEARCH, release_file, release_text
from helpers.release_path import record_validation

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT1 = date(2026, 6, 30)  # the last day of the demo data
# The nights after NIGHT1 replay the same data: its sources are days old by then.
REPLAY = {"freshness": "warn"}
# The shipped canary checks on one night instead of three (each test here is one night), and
# the matured-labels and estimated-performance triggers kept quiet so that each night's training is the test's.
RELEASE_CHANGES = {
    "canary": {"nights": 1},
    "triggers": {"data": {"min_new_matured_labels": 100000}, "performance": {"estimated_margin": 0.2}},
}
POLICY = release_policy.parse(release_text(RELEASE_CHANGES))


def night(number: int) -> date:
    return NIGHT1 + timedelta(days=number - 1)


def fetch(settings: Settings, query: str, params: list | None = None) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute(query, params).fetchall()


def labels_by_version(settings: Settings) -> dict[str, int]:
    return dict(fetch(settings, "select model_name || ' v' || model_version, count(*) from analytics.customer_labels group by 1"))


def events(settings: Settings, as_of: date) -> list[tuple[str, str | None]]:
    return [(e.event, e.model_version) for e in release_log.history(settings) if e.as_of_date == as_of]


def run_row(settings: Settings, state) -> tuple:
    return fetch(settings, "select outcome, error, model_name, model_version, steps from analytics.pipeline_runs"
                           " where run_id = %s", [str(state.state_details.flow_run_id)])[0]


@pytest.fixture(scope="module")
def settings(make_database, tmp_path_factory) -> Iterator[Settings]:
    """A database of its own with the flow tests' demo data, its own MLflow store, a short canary."""
    local = tmp_path_factory.mktemp("release-local")
    with flow_world(make_database, "release_flow", NIGHT1, local) as patch:
        for variable, value in {**SMALL_SEARCH, "CUSTLABEL_AUTO_APPROVE": "1",
                                "CUSTLABEL_RELEASE_FILE": str(release_file(local, RELEASE_CHANGES))}.items():
            patch.setenv(variable, value)
        yield get_settings()


@pytest.fixture(scope="module")
def flow(settings, harness_for_release):
    return serving.load_flow(get_settings())


@pytest.fixture(scope="module")
def harness_for_release(settings):
    from prefect.testing.utilities import prefect_test_harness

    with serving.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def first_night(flow, settings):
    return flow(as_of_date=night(1), target="prod", dbt_vars=REPLAY, return_state=True)


def test_night_one_is_labelled_by_the_rule_and_bootstraps_a_model(first_night, settings):
    assert first_night.is_completed(), first_night.message
    assert list(labels_by_version(settings)) == ["rule-baseline vunregistered"]  # scored before the first training
    tags = registry.version_tags(settings)["1"]
    assert tags[approval.APPROVAL_STATUS_TAG] == "approved" and tags["approved_by"].startswith("auto-approve")
    assert registry.alias_versions(settings) == {"challenger": "1"}
    assert tags[approval.VALIDATION_STATUS_TAG] == "passed" and tags["validated_on"].startswith("target=test")
    # the registered, validated version is the refit on every matured night, the test night included
    assert tags["refit_labels"] == "true" and tags["refit_nights"].endswith(tags["test_date"]), tags.get("refit_note")
    assert Path(tags["validation_report"]).is_file()
    assert [(e.event, e.model_version) for e in release_log.history(settings)] == [
        ("triggered", None), ("trained", "1"), ("validated", "1"), ("approved", "1"),
    ]
    (trigger,) = [e for e in release_log.history(settings) if e.event == "triggered"]
    assert trigger.details["trigger"] == "bootstrap" and trigger.details["action"] == "retrain"
    _, _, _, _, steps = run_row(settings, first_night)
    assert [s["name"] for s in steps] == ["source freshness", "dbt build", "monitoring", "release", "score and publish",
                                          "monitoring refresh", "monitoring report", "triggers", "train", "validate",
                                          "release state"]
    summary = first_night.result()
    assert "triggers fired: bootstrap" in summary
    assert "validation: version 1 passed every validation gate" in summary
    assert "release: awaiting validation none; awaiting approval none; approved, waiting for a canary v1" in summary
    assert "release: waiting for v1 approved: its canary starts at the next nightly run (nightly run)" in summary


@pytest.fixture(scope="module")
def canary_night(first_night, flow):
    return flow(as_of_date=night(2), target="prod", dbt_vars=REPLAY, return_state=True)


def test_the_approved_version_labels_its_slice_checked_against_the_champion_then_is_promoted(canary_night, settings):
    assert canary_night.is_completed(), canary_night.message
    rows = fetch(settings, "select customer_id, model_name, model_version from analytics.customer_labels")
    for customer_id, name, version in rows:
        expected = ("customer-labels", "1") if canary_slice.bucket(customer_id) < POLICY.canary.percent else ("rule-baseline", "1")
        assert (name, version) == expected, customer_id
    assert events(settings, night(2)) == [("canary_started", "1"), ("canary_night", "1"), ("promoted", "1")]
    (checked,) = [e for e in release_log.history(settings) if e.event == "canary_night"]
    assert checked.details["healthy"] is True
    verdicts = {c["name"]: c["verdict"] for c in checked.details["checks"]}
    assert verdicts == {
        "canary_scores_present": "passed", "canary_bad_share": "passed", "canary_validation_psi": "passed",
        "canary_estimated_precision": "passed", "canary_scoring": "passed",
        # against the rule baseline: a model labels differently, on another scale
        "canary_champion_bad_share": "reported", "canary_champion_score_psi": "reported",
        "canary_realized_precision": "reported",
    }
    shadow = fetch(settings, "select count(*), min(model_name) from analytics.canary_shadow_labels")[0]
    assert shadow == (sum(1 for c, *_ in rows if canary_slice.bucket(c) < POLICY.canary.percent), "rule-baseline")
    assert registry.alias_versions(settings) == {"champion": "1"}
    assert registry.version_tags(settings)["1"]["gate_canary_bad_share"].startswith("passed")
    assert "canary: canary v1: healthy (1 of 1 nights): promoted to champion" in canary_night.result()


@pytest.fixture(scope="module")
def quiet_night(canary_night, flow):
    return flow(as_of_date=night(3), target="prod", dbt_vars=REPLAY, return_state=True)


def test_a_night_without_a_trigger_does_not_train(quiet_night, settings):
    assert quiet_night.is_completed(), quiet_night.message
    assert list(labels_by_version(settings)) == ["customer-labels v1"]
    _, _, _, _, steps = run_row(settings, quiet_night)
    assert "train" not in [s["name"] for s in steps]
    assert events(settings, night(3)) == []
    assert "triggers fired: none" in quiet_night.result()
    assert "release: champion v1; canary none" in quiet_night.result()


@pytest.fixture(scope="module")
def bad_canary_night(quiet_night, flow, settings):
    version = simulation.inject_bad_challenger(settings, night(4))
    state = flow(as_of_date=night(4), target="prod", dbt_vars=REPLAY, return_state=True)
    return version, state


def test_a_bad_canary_is_rolled_back_by_its_checks_and_the_night_republished(bad_canary_night, settings):
    version, state = bad_canary_night
    assert state.is_completed(), state.message
    assert version == "2"
    assert list(labels_by_version(settings)) == ["customer-labels v1"]  # republished by the champion alone
    assert events(settings, night(4))[-3:] == [("canary_started", "2"), ("canary_night", "2"), ("rolled_back", "2")]
    rolled = [e for e in release_log.history(settings) if e.event == "rolled_back"][-1]
    assert "canary_bad_share" in rolled.reason
    assert registry.alias_versions(settings) == {"champion": "1"}
    assert registry.version_tags(settings)["2"][rollout.CANARY_STATUS] == "rolled_back"
    history = fetch(settings, "select model_version, count(*) from analytics.customer_label_history"
                              " where as_of_date = %s group by 1", [night(4)])
    assert [v for v, _ in history] == ["1"]
    outcome, _, _, version_run, _ = run_row(settings, state)
    assert (outcome, version_run) == ("succeeded", "1")


def register_unscorable_copy(settings: Settings) -> str:
    """The champion's pipeline registered again, its metadata asking for a feature the warehouse lacks: it loads,
    but cannot label. Registered, validated (as if its validation had missed it) and approved through the lifecycle."""
    champion = registry.load_alias(settings, "champion")
    columns = list(champion.feature_columns)
    sample = db.read_frame(settings, f"select {', '.join(columns)} from analytics.customer_features_current limit 50")
    sample["no_such_feature"] = 0.0
    with registry.training_run(settings, "unscorable canary", {"kind": "test"}):
        version = registry.register_model(settings, champion.pipeline, sample, champion.threshold,
                                          model_families.trusted_types())
    registry.tag_version(settings, version, {GATES_PASSED_TAG: "true"})
    lifecycle.register(settings, version, "test", "an unscorable copy", {}, None, [])
    record_validation(settings, version)
    approval.approve(settings, version, "alice", "approved by mistake")
    return version


def test_a_canary_that_cannot_label_its_slice_is_rolled_back_and_the_champion_labels_all(bad_canary_night, settings, flow):
    version = register_unscorable_copy(settings)
    assert version == "3"
    state = flow(as_of_date=night(4), target="prod", dbt_vars=REPLAY, return_state=True)
    assert state.is_completed(), state.message
    assert list(labels_by_version(settings)) == ["customer-labels v1"]
    failed_night = [e for e in release_log.history(settings) if e.event == "canary_night"][-1]
    assert failed_night.model_version == "3" and not failed_night.details["healthy"]
    assert "canary_scoring: the canary failed to label its slice" in failed_night.reason
    assert "no_such_feature" in failed_night.reason
    assert release_log.history(settings)[-1].event != "promoted"
    assert registry.version_tags(settings)["3"][rollout.CANARY_STATUS] == "rolled_back"
    assert "canary: rolled back: the canary failed to label its slice" in state.result()


def test_the_triggers_measure_the_champion(bad_canary_night, settings):
    state = rollout.read_state(settings, POLICY)
    measured = {t.name: t for t in triggers.evaluate(settings, "analytics", night(4), POLICY, state)}
    assert {name: t.fired for name, t in measured.items()} == {
        "code": False, "data": False, "performance": False, "age": False}
    registry.tag_version(settings, "1", {"training_code_sha256": "0123456789abcdef"})
    code = triggers.evaluate(settings, "analytics", night(4), POLICY, state)[0]
    assert code.fired and code.threshold["training_code_sha256"] == "0123456789abcdef"
    assert "training_code_sha256 differs from the champion's" in code.reason
    drifting = [(night(2), 0.4, "firing"), (night(3), 0.3, "firing"), (night(4), 0.1, "ok")]

    def data_trigger_with_drift_under(rule: str) -> triggers.Trigger:
        with db.connect(settings) as conn:
            for on, value, alert_state in drifting:  # rows as alerts.evaluate writes them
                conn.execute("insert into analytics_monitoring.alerts (as_of_date, rule, metric, value, threshold,"
                             " direction, breaches, k, n, state) values (%s, %s, 'feature_shift_max', %s,"
                             " 0.25, 'above', 2, 2, 3, %s)", [on, rule, value, alert_state])
        return [t for t in triggers.evaluate(settings, "analytics", night(4), POLICY, state) if t.name == "data"][0]

    with db.connect(settings) as conn:
        shipped = conn.execute("select * from analytics_monitoring.alerts where rule = 'feature_drift'").fetchall()
        conn.execute("delete from analytics_monitoring.alerts where rule = 'feature_drift'")
    try:
        undeclared = data_trigger_with_drift_under("test_shift")  # a rule alerts.yml does not say feeds the data trigger
        declared = data_trigger_with_drift_under("feature_drift")  # alerts.yml: trigger: data
    finally:
        with db.connect(settings) as conn:
            conn.execute("delete from analytics_monitoring.alerts where rule in ('test_shift', 'feature_drift')")
            with conn.cursor() as cursor:
                cursor.executemany(f"insert into analytics_monitoring.alerts values ({', '.join(['%s'] * 12)})", shipped)
    assert (undeclared.fired, undeclared.value) == (False, 0)
    assert (declared.fired, declared.value, declared.threshold) == (True, 2, 2)
    assert declared.reason == "alerts feature_drift, score_drift fired on 2 of the last 3 nights"
    late = night(4) + timedelta(days=400)
    assert [t for t in triggers.evaluate(settings, "analytics", late, POLICY, state) if t.name == "age"][0].fired


def test_rollback_at_once_republishes_tonight_with_the_previous_champion(bad_canary_night, settings):
    good = simulation.inject_bad_challenger(settings, night(4), threshold=registry.load_alias(settings, "champion").threshold)
    rollout.promote(settings, good, night(4), "test", "a promotion to roll back from")
    assert registry.alias_versions(settings) == {"champion": good, "previous-champion": "1"}
    assert cli.main(["rollback", "--by", "alice", "--reason", "complaints from sales"]) == 0
    assert registry.alias_versions(settings) == {"champion": "1"}
    assert list(labels_by_version(settings)) == ["customer-labels v1"]
    assert fetch(settings, "select distinct as_of_date from analytics.customer_labels") == [(night(4),)]
    last = release_log.history(settings)[-1]
    assert (last.event, last.model_version, last.actor, last.reason) == ("rolled_back", good, "alice", "complaints from sales")
    assert last.details == {"target": "prod", "stage": "champion", "to": "1", "when": "at once"}
    assert registry.version_tags(settings)[good]["rolled_back_by"] == "alice"


def test_rollback_for_the_next_night_leaves_tonight_and_says_who(bad_canary_night, settings, capsys):
    before = fetch(settings, "select md5(string_agg(customer_id || model_version, ',' order by customer_id))"
                             " from analytics.customer_labels")
    assert cli.main(["rollback", "--to", "4", "--by", "bob", "--reason", "v4 was fine", "--next-night"]) == 0
    assert "v4 labels from the next nightly run" in capsys.readouterr().out
    assert registry.alias_versions(settings)["champion"] == "4"
    assert fetch(settings, "select md5(string_agg(customer_id || model_version, ',' order by customer_id))"
                           " from analytics.customer_labels") == before
    assert release_log.history(settings)[-1].details["when"] == "next night"
    assert cli.main(["rollback", "--to", "99", "--by", "bob", "--reason", "typo"]) == 2
    assert "customer-labels has no version 99" in capsys.readouterr().err


def test_rollback_to_a_version_that_was_never_champion_is_refused(bad_canary_night, settings, capsys):
    before = registry.alias_versions(settings)
    assert cli.main(["rollback", "--to", "2", "--by", "mallory", "--reason", "it looked fine"]) == 2
    assert ("v2 was never champion (rolled_back): a rollback goes back to a former champion (former champions: v1);"
            " a new version becomes champion through `custlabel validate`") in capsys.readouterr().err
    assert registry.alias_versions(settings) == before


def test_a_champion_that_loads_but_cannot_label_falls_back_to_the_previous_one_loudly(bad_canary_night, settings, flow):
    unscorable = register_unscorable_copy(settings)
    approval.promote(settings, unscorable, "carol")
    assert registry.alias_versions(settings) == {"champion": unscorable, "previous-champion": "4"}
    state = flow(as_of_date=night(4), target="prod", dbt_vars=REPLAY, return_state=True)
    assert state.is_failed()
    assert f"fallback: customer-labels v{unscorable} failed to label its customers" in state.message
    assert "no_such_feature" in state.message and "labelled by the previous champion v4" in state.message
    assert list(labels_by_version(settings)) == ["customer-labels v4"]
    outcome, error, name, version, _ = run_row(settings, state)
    assert (outcome, name, version) == ("failed", "customer-labels", "4") and "fallback" in error
    fallbacks = [e for e in release_log.history(settings) if e.event == "fallback" and e.as_of_date == night(4)]
    assert [(e.model_version, e.details["labelled_by"]) for e in fallbacks] == [("4", "customer-labels v4")]


def test_a_deleted_champion_falls_back_to_the_previous_one_loudly(bad_canary_night, settings, flow):
    champion = lifecycle.read(settings).champion
    MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri).delete_model_version(settings.model_name, champion)
    state = flow(as_of_date=night(4), target="prod", dbt_vars=REPLAY, return_state=True)  # night 4 again: the data ends on night 1
    assert state.is_failed()
    assert (f"fallback: champion v{champion} of the release log is not in the registry (MLflow store missing, or the"
            " version deleted); labelled by the previous champion v4") in state.message
    assert list(labels_by_version(settings)) == ["customer-labels v4"]
    outcome, error, name, version, _ = run_row(settings, state)
    assert (outcome, name, version) == ("failed", "customer-labels", "4") and "fallback" in error
    assert [e.reason for e in release_log.history(settings) if e.event == "fallback"][-1].startswith(f"champion v{champion}")


def test_a_missing_mlflow_store_falls_back_to_the_rule_whose_rate_check_is_not_waived(bad_canary_night, settings, flow,
                                                                                       monkeypatch, tmp_path):
    before = labels_by_version(settings)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'gone' / 'mlflow.db'}")
    state = flow(as_of_date=night(4), target="prod", dbt_vars=REPLAY, return_state=True)
    assert state.is_failed()
    assert "of the release log is not in the registry (MLflow store missing" in state.message
    assert "labelled by the rule baseline" in state.message
    # The rule's bad rate is far from the model's: the check is not waived, yesterday's labels stay.
    assert "not published: bad rate" in state.message and "moved more than 10.0%" in state.message
    assert labels_by_version(settings) == before
    outcome, error, _, _, _ = run_row(settings, state)
    assert outcome == "failed" and "MLflow store missing" in error
    assert [e.model_name for e in release_log.history(settings) if e.event == "fallback"][-1] == "rule-baseline"
