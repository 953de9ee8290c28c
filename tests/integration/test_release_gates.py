"""The release gates on a real Postgres and a real MLflow registry: what they refuse, what they let through.

Each world is a contract-shaped training_set and rule_baseline_scores written by
tests/helpers/training_world.py, with the signal the test needs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from custlabel.config import DEFAULT_PROJECT_DIR, Settings
from custlabel.release import approval, lifecycle, registration, release_log
from custlabel.training import acceptance, model_search, registry
from helpers import training_world
from helpers.release_path import approve_and_promote, record_validation
from helpers.training_world import World

pytestmark = pytest.mark.integration

FAST = model_search.TrainConfig(search_iterations=1, max_folds=2, n_jobs=1, candidates=("logistic_regression",))
APPROVER = "alice"


def criteria(**performance) -> acceptance.AcceptanceCriteria:
    """The repository's acceptance criteria with some performance figures changed."""
    raw = yaml.safe_load((DEFAULT_PROJECT_DIR / "acceptance.yml").read_text())
    raw["performance"].update(performance)
    return acceptance.parse(yaml.safe_dump(raw))


def world_settings(make_database, name: str, folder: Path, world: World, target: str = "prod") -> Settings:
    settings = replace(
        make_database(name),
        target=target,
        mlflow_tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        mlflow_artifact_root=folder / "artifacts",
    )
    training_world.create(settings, world)
    return settings


def events(settings: Settings, version: str) -> list[str]:
    return [event.event for event in release_log.history(settings, version, settings.model_name)]


def tags(settings: Settings, version: str) -> dict[str, str]:
    return MlflowClient(settings.mlflow_tracking_uri).get_model_version(settings.model_name, version).tags


def gate(done: registration.Release, name: str):
    return next(result for result in done.trained.gates if result.name == name)


def test_a_version_worse_than_the_rule_baseline_at_its_recall_is_rejected(make_database, tmp_path: Path) -> None:
    settings = world_settings(make_database, "gates_rule_wins", tmp_path, World(model_noise=1.5, rule_noise=0.1))
    lenient = criteria(min_precision=0.3, min_recall=0.1, min_lift=1.1, max_bad_share=0.9)
    done = registration.train_and_register(settings, FAST, lenient)
    beaten = gate(done, "beats_baseline")
    assert not beaten.passed
    assert beaten.figures["model_precision"] < beaten.figures["rule_precision"]
    assert "95% CI" in beaten.reason
    # the absolute criteria alone would have let it through
    assert all(gate(done, name).passed for name in ("operating_point", "precision", "recall", "lift", "label_share"))
    assert done.alias is None
    assert registry.alias_versions(settings) == {}
    recorded = tags(settings, done.version)
    assert recorded["gates_passed"] == "false" and recorded["gate_beats_baseline"].startswith("failed: at the rule's recall")
    assert events(settings, done.version) == ["trained", "rejected"]
    assert "beats_baseline" in release_log.history(settings, done.version)[-1].reason


@pytest.fixture(scope="module")
def everyone_bad(make_database, tmp_path_factory) -> tuple[Settings, registration.Release]:
    """80% of customers bad and a model that knows little: labelling everyone meets a 0.70 precision floor."""
    world = World(base_rate=0.8, model_noise=4.0, rule_noise=4.0, rule_share=0.5)
    settings = world_settings(make_database, "gates_everyone_bad", tmp_path_factory.mktemp("mlflow"), world)
    return settings, registration.train_and_register(settings, FAST, criteria())


def test_labelling_almost_everyone_is_rejected_and_nobody_moves(everyone_bad) -> None:
    settings, done = everyone_bad
    point = gate(done, "operating_point")
    assert not point.passed
    assert "no threshold meets precision >= 0.72, recall >= 0.30, lift >= 1.40, share labelled bad <= 0.63" in point.reason
    assert not done.trained.passed_gates and done.alias is None
    assert registry.alias_versions(settings) == {}
    assert events(settings, done.version) == ["trained", "rejected"]
    assert "operating_point" in release_log.history(settings, done.version)[-1].reason


def test_a_version_that_failed_the_gates_cannot_be_approved(everyone_bad) -> None:
    settings, done = everyone_bad
    with pytest.raises(lifecycle.LifecycleError, match="is rejected; a validation needs it"):
        record_validation(settings, done.version)
    with pytest.raises(approval.ApprovalError, match=r"did not pass the training gates \(.*gate_operating_point"):
        approval.approve(settings, done.version, "alice")
    with pytest.raises(lifecycle.LifecycleError, match="is rejected; a promotion needs it canary or approved"):
        approval.promote(settings, done.version, "alice")
    assert registry.alias_versions(settings) == {}


@pytest.fixture(scope="module")
def good(make_database, tmp_path_factory) -> tuple[Settings, registration.Release, dict[str, str]]:
    """A model that sees the risk well, a rule that sees it badly: night one, then approved and promoted."""
    settings = world_settings(make_database, "gates_good", tmp_path_factory.mktemp("mlflow"), World())
    done = registration.train_and_register(settings, FAST, criteria())
    aliases_after_training = registry.alias_versions(settings)
    approve_and_promote(settings, done.version)
    return settings, done, aliases_after_training


def test_a_good_version_passes_every_gate_and_waits_for_approval(good) -> None:
    settings, done, aliases_after_training = good
    assert done.trained.passed_gates, [g.reason for g in done.trained.gates if not g.passed]
    assert gate(done, "beats_baseline").figures["gain_ci_low"] > 0
    assert gate(done, "vs_champion").reason == "no champion yet: nothing to compare with"
    assert done.alias == "challenger" and aliases_after_training == {"challenger": "1"}
    assert registry.alias_versions(settings) == {"champion": "1"}
    recorded = tags(settings, "1")
    assert (recorded["target"], recorded["schema"], recorded["gates_passed"]) == ("prod", "analytics", "true")
    assert recorded["data_window"] == "2025-01-01..2026-01-01"
    assert recorded["approval_status"] == "approved" and recorded["approved_by"] == APPROVER
    assert events(settings, "1") == ["trained", "validated", "approved", "promoted"]


def test_the_next_version_is_compared_with_the_champion(good) -> None:
    settings = good[0]
    done = registration.train_and_register(settings, FAST, criteria())
    against = gate(done, "vs_champion")
    assert against.passed and "against the champion on the same rows: precision +0.000" in against.reason
    assert registry.alias_versions(settings) == {"challenger": done.version, "champion": "1"}


def test_a_test_target_run_cannot_move_a_prod_alias(good) -> None:
    prod = good[0]
    test = replace(prod, target="test")
    training_world.create(test, World())
    before = registry.alias_versions(prod)
    done = registration.train_and_register(test, FAST, criteria())
    approve_and_promote(test, done.version)
    assert registry.alias_versions(prod) == before
    assert registry.alias_versions(test) == {"champion": done.version}
    aliases = MlflowClient(prod.mlflow_tracking_uri).get_registered_model(prod.model_name).aliases
    assert str(aliases["test-champion"]) == done.version and str(aliases["champion"]) == before["champion"]
    assert (tags(prod, done.version)["target"], tags(prod, done.version)["schema"]) == ("test", "analytics_test")
    with pytest.raises(registry.TargetMismatchError, match=f"version {done.version} was trained for target test"):
        registry.set_alias(prod, "champion", done.version)
    with pytest.raises(lifecycle.LifecycleError, match=f"v{done.version} is not in the release log"):
        approval.promote(prod, done.version, "mallory")
    assert registry.alias_versions(prod) == before
    assert [e.model_version for e in release_log.history(prod) if e.event == "promoted"] == ["1"]


def test_approve_and_reject_follow_the_rules(good, monkeypatch, capsys) -> None:
    from custlabel import cli

    settings = good[0]
    first = registration.train_and_register(settings, FAST, criteria()).version
    second = registration.train_and_register(settings, FAST, criteria()).version
    with pytest.raises(lifecycle.LifecycleError, match=rf"v{first} is registered; an approval needs it validated: "
                       rf"validate it first: .*`custlabel validate {first}`"):
        approval.approve(settings, first, "alice")
    registry.tag_version(settings, first, {approval.VALIDATION_STATUS_TAG: "passed"})  # a tag decides nothing
    with pytest.raises(lifecycle.LifecycleError, match="is registered; an approval needs it validated"):
        approval.approve(settings, first, "alice")

    record_validation(settings, first)
    for name, value in {"PGDATABASE": settings.connection.dbname, "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri}.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["approve", first, "--by", "alice", "--note", "report reviewed"]) == 0
    assert f"version {first} approved by alice" in capsys.readouterr().out
    recorded = tags(settings, first)
    assert (recorded["approval_status"], recorded["approved_by"], recorded["approval_note"]) == (
        "approved", "alice", "report reviewed"
    )
    assert recorded["approved_at"]
    approved = release_log.history(settings, first)[-1]
    assert (approved.event, approved.actor, approved.reason) == ("approved", "alice", "report reviewed")
    assert registry.alias_versions(settings)["champion"] == "1"  # approval makes it eligible, not champion
    assert cli.main(["approve", first, "--by", "bob"]) == 2
    assert f"v{first} is approved; an approval needs it validated" in capsys.readouterr().err

    with pytest.raises(lifecycle.LifecycleError, match="needs --note"):
        approval.reject(settings, second, "bob", " ")
    assert registry.alias_versions(settings)["challenger"] == second
    assert cli.main(["reject", second, "--by", "bob", "--note", "too few customers flagged"]) == 0
    assert tags(settings, second)["approval_status"] == "rejected"
    assert registry.alias_versions(settings)["challenger"] == first
    with pytest.raises(lifecycle.LifecycleError, match="is rejected; a promotion needs it canary or approved: it was "
                       "rejected and is closed: train a new version"):
        approval.promote(settings, second, "bob")

    assert cli.main(["promote", first, "--by", "carol"]) == 0
    assert registry.alias_versions(settings) == {"champion": first, "previous-champion": "1"}
    log = release_log.history(settings)
    assert [(e.event, e.model_version, e.actor) for e in log if e.event in ("approved", "rejected", "promoted")][-3:] == [
        ("approved", first, "alice"), ("rejected", second, "bob"), ("promoted", first, "carol")
    ]
