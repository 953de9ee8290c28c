"""The nightly steps' own rules, without a warehouse: retries, plans, summaries, the flow's parameters."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import psycopg
import pytest
from prefect.states import Failed

from custlabel import gate_verdicts
from custlabel.errors import CustlabelError
from custlabel.config import DEFAULT_PROJECT_DIR, get_settings
from custlabel.monitoring import alerts, pipeline_runs
from custlabel.nightly import night_steps, serving
from custlabel.release import (
    canary_health,
    registration,
    release_policy,
    rollout,
    triggers,
)
from custlabel.release.score_distribution import ScoreDistribution
from custlabel.scoring import score
from custlabel.scoring.score import ScoreSummary, SliceResult
from custlabel.scoring.writeback import WriteBackError
from custlabel.training import acceptance, model_search, rule_baseline
from custlabel.warehouse import dbt_runner, freshness
from custlabel.warehouse.dbt_runner import DbtFailure, DbtResult, parse_vars, split_vars
from helpers.night_config import ONE_FAMILY, release_file

NIGHT = night_steps.Night(date(2026, 6, 30), "prod", run_id="r-1", run_name="brave-otter")


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (ConnectionResetError("connection reset by peer"), True),
        (OSError("disk hiccup"), False),  # not a declared transient error: a retry would hide it
        (DbtFailure("dbt build failed: not_null_customers_customer_id: Got 1 result"), False),
        (WriteBackError("bad rate moved more than 10%"), False),
    ],
)
def test_lost_connections_are_retried_a_failed_test_or_check_never(error, retried):
    assert night_steps.is_transient(None, None, Failed(data=error)) is retried


def test_a_night_names_its_schema_and_rejects_unknown_targets():
    assert NIGHT.schema == "analytics"
    with pytest.raises(ValueError, match="unknown target 'staging'"):
        night_steps.plan(date(2026, 6, 30), "staging", False)


def test_a_night_defaults_to_the_last_complete_night_outside_a_flow_run(monkeypatch):
    # UTC-12: the last complete night there is never today's date in UTC
    monkeypatch.setenv("CUSTLABEL_TIMEZONE", "Etc/GMT+12")
    night = night_steps.plan(None, "test", retrain=True)
    expected = night_steps.last_complete_night("Etc/GMT+12")
    assert (night.as_of_date, night.schema, night.retrain, night.run_name) == (expected, "analytics_test", True, "local")
    assert night.as_of_date < date.today()
    assert night.run_id


@pytest.mark.parametrize(
    ("now", "zone", "night"),
    [
        ("2026-12-02T02:00:00+00:00", "UTC", date(2026, 12, 1)),
        ("2026-12-02T00:00:00+00:00", "UTC", date(2026, 12, 1)),
        ("2026-12-01T23:59:00+00:00", "UTC", date(2026, 11, 30)),
        ("2026-12-02T02:00:00+00:00", "America/New_York", date(2026, 11, 30)),
        ("2026-12-02T02:00:00+00:00", "Asia/Tokyo", date(2026, 12, 1)),
        ("2026-12-02T20:00:00+00:00", "Asia/Tokyo", date(2026, 12, 2)),
    ],
)
def test_the_last_complete_night_is_yesterday_in_the_time_zone(now, zone, night):
    assert night_steps.last_complete_night(zone, datetime.fromisoformat(now)) == night


def test_an_unknown_time_zone_is_named():
    with pytest.raises(CustlabelError, match="unknown time zone 'Mars/Olympus'"):
        night_steps.last_complete_night("Mars/Olympus")


def test_the_summary_lists_steps_release_triggers_labels_and_training():
    record = pipeline_runs.RunRecord(None, "analytics", "r-1", "brave-otter", NIGHT.as_of_date, "prod", {}, attempt=2)
    record.steps = [
        pipeline_runs.Step("dbt build", "completed", 61.0, "t", 1),
        pipeline_runs.Step("dbt build", "cached", 0.1, "t", 2),
        pipeline_runs.Step("score and publish", "completed", 2.5, "t", 2),
    ]
    labels = ScoreSummary("analytics", NIGHT.as_of_date, 2_701, 0.271,
                          [SliceResult("customer-labels", "2", "champion", "python", 2_701, "exact")])
    published = night_steps.Published(labels, "customer-labels v2")
    trained = night_steps.TrainOutcome("3", "random_forest", True, [])
    validated = night_steps.ValidationOutcome("3", True, True, "/r/validation-v3.html")
    rejected = night_steps.TrainOutcome("4", "logistic_regression", False, [], ["lift: test lift 1.02"])
    failed = night_steps.ValidationOutcome("5", False, False, "/r/validation-v5.html", ["computational: 900 rows/s < 20,000"])
    found = night_steps.TriggerReport(
        [triggers.Trigger("code", False, "as the champion's"), triggers.Trigger("age", True, "400 days old", 400, 365)],
        "retrain",
    )
    state = rollout.ReleaseState("customer-labels", champion="2", previous_champion="1", canary_nights_needed=3,
                                 approved=["3"], registered=3, on_its_way="3",
                                 waiting_for=["v3 approved: its canary starts at the next nightly run (nightly run)"])
    summary = night_steps.summarize(NIGHT, record, None, published, trained, None, found, state, validated)
    assert summary.lines == [
        "nightly-customer-labels run brave-otter for 2026-06-30, target prod (analytics)",
        "steps: dbt build 0.1 s (cached), score and publish 2.5 s (completed)",
        "release: champion v2, previous champion v1; canary none",
        "release: awaiting validation none; awaiting approval none; approved, waiting for a canary v3",
        "release: waiting for v3 approved: its canary starts at the next nightly run (nightly run)",
        "triggers fired: age (400 days old; threshold 365) → retrain",
        "training: version 3 (random_forest) passed every training gate; challenger, awaiting validation and approval",
        "validation: version 3 passed every validation gate (report /r/validation-v3.html); approved (auto-approve):"
        " its canary starts the next night",
        "labels: 2,701 customers by customer-labels v2 (champion, python engine)",
        "labels: 2,701 customers as of 2026-06-30, bad rate 27.1%; select * from analytics.customer_labels",
    ]
    assert summary.data["labels"]["customers"] == 2_701 and summary.data["monitoring"] is None
    assert summary.data["release"]["trigger_action"] == "retrain"
    assert rejected.detail == (
        "version 4 (logistic_regression) REJECTED by the release gates, no alias moved: lift: test lift 1.02"
    )
    assert failed.detail == (
        "version 5 FAILED validation, not approved (report /r/validation-v5.html): computational: 900 rows/s < 20,000"
    )


def test_the_summary_reports_the_canarys_bad_share_against_the_rule_without_judging_it():
    scores = np.array([0.9, 0.8, 0.75, 0.3, 0.1])
    night = canary_health.SliceNight(NIGHT.as_of_date, 5, scores, scores >= 0.5, np.array([3.0, 0, 0, 0, 0]),
                                     np.array([True, False, False, False, False]), 1.0, comparable=False,
                                     validation=ScoreDistribution.of(scores))
    results = canary_health.health_checks(release_policy.load(get_settings()).canary, acceptance.load(get_settings()).performance, night, None)
    assert gate_verdicts.all_passed(results), gate_verdicts.failures(results)
    verdict = night_steps.CanaryVerdict("3", True, [r.as_dict() for r in results], 1, "healthy (1 of 3 nights)")
    record = pipeline_runs.RunRecord(None, "analytics", "r-1", "brave-otter", NIGHT.as_of_date, "prod", {})
    lines = night_steps.summarize(NIGHT, record, None, None, None, verdict).lines
    assert lines[2:4] == [
        "canary: canary v3: healthy (1 of 3 nights)",
        "canary: v3 bad share 60.0% against the rule baseline's 20.0% on the same slice; reported only: a model is"
        " expected to label differently from the rule baseline (reported)",
    ]


def test_a_fallback_is_the_first_line_of_the_summary_and_never_waives_the_rate_check():
    record = pipeline_runs.RunRecord(None, "analytics", "r-1", "brave-otter", NIGHT.as_of_date, "prod", {})
    labels = ScoreSummary("analytics", NIGHT.as_of_date, 10, 0.3, [])
    published = night_steps.Published(labels, "rule-baseline v1", fallback="champion v2 cannot be loaded; labelled by the rule")
    assert night_steps.summarize(NIGHT, record, None, published, None).lines[2] == (
        "FALLBACK: champion v2 cannot be loaded; labelled by the rule")
    lineup = rollout.Lineup(rule_baseline.RULE, fallback="champion v2 cannot be loaded")
    assert night_steps.model_changed(NIGHT, lineup) is False  # decided before any look at the last night


def test_the_flow_has_typed_parameters_for_the_operator():
    flow = serving.load_flow(get_settings())
    assert flow.name == night_steps.FLOW_NAME
    properties = flow.parameters.properties
    # auto-approve is a CLI flag of runs started here, never a parameter of the served deployment
    assert set(properties) == {"as_of_date", "target", "retrain", "dbt_vars", "skip_training"}
    assert {"format": "date", "type": "string"} in properties["as_of_date"]["anyOf"]
    assert {"enum": ["dev", "test", "prod", "spark"], "type": "string"} in properties["target"]["anyOf"]
    assert properties["retrain"]["type"] == "boolean" and properties["skip_training"]["type"] == "boolean"


def test_retraining_and_skipping_training_together_is_refused():
    with pytest.raises(CustlabelError, match="--retrain or --skip-training"):
        night_steps.plan(date(2026, 6, 30), "prod", retrain=True, skip_training=True)


def test_a_night_that_skips_training_says_so_in_its_run_record():
    night = night_steps.plan(date(2026, 6, 30), "prod", retrain=False, skip_training=True)
    assert night.skip_training and not night.retrain
    assert night_steps.run_record(night).parameters["skip_training"] is True


def test_auto_approval_is_set_where_the_night_is_started_and_never_in_a_deployments_run(monkeypatch):
    assert not night_steps.plan(date(2026, 6, 30), "prod", False).auto_approve
    monkeypatch.setenv("CUSTLABEL_AUTO_APPROVE", "1")
    assert night_steps.plan(date(2026, 6, 30), "prod", False).auto_approve
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", "5f0c7e4e-0d7a-4c4e-9a53-0c1d8c3f8a11")
    assert not night_steps.plan(date(2026, 6, 30), "prod", False).auto_approve


def test_serve_refuses_to_serve_a_deployment_that_would_approve(monkeypatch):
    monkeypatch.setenv("CUSTLABEL_AUTO_APPROVE", "1")
    with pytest.raises(CustlabelError, match="CUSTLABEL_AUTO_APPROVE is set: the served deployment never approves"):
        serving.serve(get_settings())


def test_the_nights_release_policy_and_alert_rules_are_the_files_its_settings_name(monkeypatch, tmp_path):
    shipped = release_policy.read_file(DEFAULT_PROJECT_DIR / "release.yml").model_dump()
    assert night_steps.release_policy(NIGHT).model_dump() == shipped
    monkeypatch.setenv("CUSTLABEL_RELEASE_FILE", str(release_file(tmp_path, {"canary": {"nights": 1}})))
    assert night_steps.release_policy(NIGHT).model_dump() == {**shipped, "canary": {**shipped["canary"], "nights": 1}}
    monkeypatch.setenv("CUSTLABEL_ALERTS_FILE", str(tmp_path / "missing-alerts.yml"))
    with pytest.raises(alerts.AlertConfigError, match=f"no alert rules at {tmp_path / 'missing-alerts.yml'}"):
        night_steps.evaluate_alerts(NIGHT)


def test_the_night_scores_the_contracted_current_features_of_its_night_within_the_business_capacity(monkeypatch):
    requests = []
    monkeypatch.setattr(score, "score", lambda settings, request, models: requests.append(request))
    night_steps._score(NIGHT, rollout.Lineup(rule_baseline.RULE), 10.0, waive=True)
    (request,) = requests
    assert (request.schema, request.relation, request.as_of, request.expected_as_of) == (
        "analytics", "customer_features_current", None, NIGHT.as_of_date,
    )
    assert request.alias == "champion" and request.force and request.canary_percent == 0
    assert request.max_bad_share == acceptance.load(get_settings()).performance.max_bad_share < 1


class _Registered(Exception):
    """Stops the stand-in release once it has seen its arguments."""


def test_the_nights_training_is_keyed_by_its_flow_run(monkeypatch):
    calls = []

    def release_stand_in(*args, **kwargs):
        calls.append(kwargs)
        raise _Registered

    monkeypatch.setattr(registration, "train_and_register", release_stand_in)
    with pytest.raises(_Registered):
        night_steps.train_and_register(NIGHT)
    assert calls[0]["run_key"] == "r-1"


def test_the_nights_search_size_is_its_settings(monkeypatch):
    configs = []

    def release_stand_in(settings, config, **kwargs):
        configs.append(config)
        raise _Registered

    monkeypatch.setattr(registration, "train_and_register", release_stand_in)
    for variable, value in ONE_FAMILY.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(_Registered):
        night_steps.train_and_register(NIGHT)
    (config,) = configs
    assert (config.search_iterations, config.max_folds, config.n_jobs, config.candidates) == (1, 2, 1, ("logistic_regression",))
    assert config.train_rows_per_date == model_search.TrainConfig().train_rows_per_date
    monkeypatch.setenv("CUSTLABEL_SEARCH_CANDIDATES", "logistic_regression,deep_forest")
    with pytest.raises(CustlabelError, match="CUSTLABEL_SEARCH_CANDIDATES names unknown model families deep_forest"):
        night_steps.train_and_register(NIGHT)


def test_the_nights_dbt_vars_reach_every_dbt_step(monkeypatch):
    calls = []
    monkeypatch.setattr(dbt_runner, "run", lambda settings, args, **kw: calls.append((args[0], kw)) or DbtResult(args[0], [], 1))
    monkeypatch.setattr(freshness, "check", lambda settings, night, dbt_vars: calls.append(
        ("freshness", {"extra_vars": dbt_vars, "as_of_date": str(night)})) or freshness.Checked(2, []))
    night = night_steps.plan(date(2026, 6, 30), "test", False, dbt_vars={"outcome_window_days": 30, "freshness": "warn"})
    night_steps.check_freshness(night), night_steps.build(night), night_steps.refresh_label_monitoring(night)
    assert [(command, kw["extra_vars"], kw["as_of_date"]) for command, kw in calls] == [
        (command, {"outcome_window_days": 30, "freshness": "warn"}, "2026-06-30") for command in ("freshness", "build", "build")
    ]
    assert night_steps.run_record(night).parameters["dbt_vars"] == {"outcome_window_days": 30, "freshness": "warn"}


def test_vars_are_read_as_dbt_reads_them():
    assert parse_vars("{outcome_window_days: 30, as_of_date: 2026-06-30}") == {"outcome_window_days": 30, "as_of_date": date(2026, 6, 30)}
    assert split_vars(["build", "--vars", "{a: 1}", "--select", "x", "--vars={b: 2}"]) == (["build", "--select", "x"], {"a": 1, "b": 2})
    with pytest.raises(CustlabelError, match="must be a mapping"):
        parse_vars("30")
