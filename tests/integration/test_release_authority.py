"""The release authority on a real Postgres and MLflow registry: each side door refused with the allowed way,
and no dead end (issue 19). The world is a contract-shaped training_set (tests/helpers/training_world.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from custlabel import cli
from custlabel.config import Settings, get_settings
from custlabel.nightly import night_steps
from custlabel.release import (
    approval,
    lifecycle,
    registration,
    release_log,
    release_policy,
    rollout,
)
from custlabel.scoring import score
from custlabel.training import model_search, registry
from helpers import training_world
from helpers.release_path import approve_and_promote, record_validation
from helpers.training_world import World

pytestmark = pytest.mark.integration

FAST = model_search.TrainConfig(search_iterations=1, max_folds=2, n_jobs=1, candidates=("logistic_regression",))
NIGHT = date(2026, 2, 1)
POLICY = release_policy.load(get_settings())  # the shipped release.yml


def world(make_database, name: str, folder: Path) -> Settings:
    settings = replace(make_database(name), target="prod", mlflow_tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
                       mlflow_artifact_root=folder / "artifacts", local_dir=folder / "local")
    training_world.create(settings, World())
    return settings


def use(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the commands that read the environment (CLI, nightly steps) at the world."""
    for name, value in {"PGDATABASE": settings.connection.dbname, "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
                        "CUSTLABEL_LOCAL_DIR": str(settings.local_dir), "CUSTLABEL_TARGET": "prod"}.items():
        monkeypatch.setenv(name, value)


def trained(settings: Settings) -> str:
    done = registration.train_and_register(settings, FAST)
    assert done.trained.passed_gates, [g.reason for g in done.trained.gates if not g.passed]
    return done.version


@pytest.fixture(scope="module")
def doors(make_database, tmp_path_factory) -> Settings:
    return world(make_database, "side_doors", tmp_path_factory.mktemp("side-doors"))


def test_train_cannot_make_a_champion(doors, monkeypatch, capsys) -> None:
    use(doors, monkeypatch)
    assert cli.main(["train", "--alias", "champion"]) == 2
    error = capsys.readouterr().err
    assert "a training cannot set the alias 'champion': it registers a candidate (challenger)" in error
    assert "`custlabel validate VERSION`, `custlabel approve VERSION --by NAME`, then its canary" in error
    assert registry.alias_versions(doors) == {} and release_log.history(doors) == []


def test_score_cannot_publish_a_challenger_to_prod(doors, monkeypatch, capsys) -> None:
    use(doors, monkeypatch)
    assert cli.main(["score", "--alias", "challenger", "--target", "prod"]) == 2
    assert "--alias challenger would label every prod customer: only the champion labels prod" in capsys.readouterr().err
    assert cli.main(["score", "--canary-percent", "10", "--canary-alias", "challenger", "--target", "prod"]) == 2
    assert "only an approved canary does, started by the nightly run" in capsys.readouterr().err
    with pytest.raises(score.ProdAliasError):
        score.score(doors, score.ScoreRequest(doors.schema, alias="challenger"))


def test_a_missing_validation_does_not_count_as_passed_for_a_canary(doors) -> None:
    version = trained(doors)
    registry.tag_version(doors, version, {approval.APPROVAL_STATUS_TAG: approval.APPROVED})  # no validation_status
    state = rollout.read_state(doors, POLICY)
    assert (state.approved, state.awaiting_validation) == ([], [version])
    assert rollout.start_canary(doors, state, NIGHT, "nightly").canary is None
    with pytest.raises(lifecycle.LifecycleError, match=rf"v{version} is registered; a canary needs it approved: "
                       rf"validate it first: .*`custlabel validate {version}`"):
        lifecycle.start_canary(doors, version, "nightly", NIGHT)


def test_an_approval_set_only_as_a_tag_is_no_approval(doors) -> None:
    version = rollout.read_state(doors, POLICY).awaiting_validation[-1]
    record_validation(doors, version)
    registry.tag_version(doors, version, {approval.APPROVAL_STATUS_TAG: approval.APPROVED, approval.APPROVED_BY_TAG: "mallory"})
    state = rollout.read_state(doors, POLICY)
    assert (state.approved, state.awaiting_approval) == ([], [version])
    with pytest.raises(lifecycle.LifecycleError, match=rf"v{version} is validated; a canary needs it approved: a business "
                       rf"owner approves it \(`custlabel approve {version} --by NAME`\)"):
        lifecycle.start_canary(doors, version, "nightly", NIGHT)
    with pytest.raises(lifecycle.LifecycleError, match="a promotion needs it canary or approved"):
        approval.promote(doors, version, "mallory")


def test_a_version_validated_against_another_champion_validates_again(doors) -> None:
    waiting = rollout.read_state(doors, POLICY).awaiting_approval[-1]
    approval.approve(doors, waiting, "alice", "report reviewed")
    approve_and_promote(doors, trained(doors))
    champion = lifecycle.read(doors).champion
    with pytest.raises(lifecycle.LifecycleError, match=rf"v{waiting} was validated against the rule baseline, but the "
                       rf"champion of prod is v{champion}: validate it again: `custlabel validate {waiting}`"):
        lifecycle.start_canary(doors, waiting, "nightly", NIGHT)
    assert registry.alias_versions(doors) == {"champion": champion}  # older than the champion: no longer the challenger


def test_the_registry_is_a_projection_of_the_log_repaired_loudly(doors, caplog) -> None:
    now = lifecycle.read(doors)
    stale = next(version for version in now.versions if version != now.champion)
    registry.set_alias(doors, "champion", stale)  # a hand in the registry
    assert lifecycle.reconcile(doors) == [f"champion: v{stale} -> v{now.champion}"]
    assert "the registry's aliases disagreed with the release log of prod; the log wins" in caplog.text
    assert registry.alias_versions(doors)["champion"] == now.champion
    assert lifecycle.reconcile(doors) == []


@pytest.fixture(scope="module")
def dead_ends(make_database, tmp_path_factory) -> Settings:
    return world(make_database, "dead_ends", tmp_path_factory.mktemp("dead-ends"))


def triggers_on(night: date) -> night_steps.TriggerReport:
    return night_steps.find_triggers(night_steps.Night(as_of_date=night, target="prod", run_id=f"r-{night}", run_name="t"))


def test_a_failed_validation_closes_the_version_and_the_triggers_train_again(dead_ends, monkeypatch, capsys) -> None:
    use(dead_ends, monkeypatch)
    first = trained(dead_ends)
    assert triggers_on(NIGHT).action == f"none: v{first} is already on its way"
    record_validation(dead_ends, first, passed=False)
    state = rollout.read_state(dead_ends, POLICY)
    assert (state.on_its_way, state.awaiting_approval, registry.alias_versions(dead_ends)) == (None, [], {})
    assert cli.main(["status"]) == 0
    status = capsys.readouterr().out
    assert "release: champion none (the rule baseline labels); canary none" in status
    assert (f"release: waiting for a first model: the rule baseline labels; a trigger trains a candidate; the last "
            f"candidate v{first} was validation_failed (data scientist: `custlabel nightly --retrain`)") in status
    found = triggers_on(NIGHT)
    assert [t.name for t in found.fired] == ["no_champion"] and found.action == "retrain"


def test_after_a_rejection_the_triggers_cool_off_then_train(dead_ends, monkeypatch) -> None:
    use(dead_ends, monkeypatch)
    second = trained(dead_ends)
    record_validation(dead_ends, second)
    approval.reject(dead_ends, second, "bob", "labels too many loyal customers")
    wait = POLICY.triggers.cool_off_nights
    cooling = triggers_on(NIGHT + timedelta(days=1))
    assert cooling.action == (f"none: cooling off: the last candidate v{second} was rejected and the last retraining "
                              f"was 1 night(s) ago (triggers.cool_off_nights: {wait})")
    assert triggers_on(NIGHT + timedelta(days=wait)).action == "retrain"
    actions = [e.details["action"] for e in release_log.history(dead_ends) if e.event == "triggered"]
    assert actions[-2:] == [cooling.action, "retrain"]


def test_after_a_rolled_back_canary_the_triggers_train_again(dead_ends, monkeypatch) -> None:
    use(dead_ends, monkeypatch)
    third = trained(dead_ends)
    record_validation(dead_ends, third)
    approval.approve(dead_ends, third, "alice")
    later = NIGHT + timedelta(days=10)
    rollout.start_canary(dead_ends, rollout.read_state(dead_ends, POLICY), later, "nightly")
    assert triggers_on(later).action == f"none: v{third} is already on its way"
    rollout.roll_back_canary(dead_ends, third, later, "nightly", "canary checks failed: canary_scores_present")
    assert (lifecycle.read(dead_ends).state_of(third), registry.alias_versions(dead_ends)) == ("rolled_back", {})
    assert triggers_on(later + timedelta(days=POLICY.triggers.cool_off_nights)).action == "retrain"


def test_a_night_that_skips_training_records_the_fired_trigger_and_trains_nothing(dead_ends, monkeypatch) -> None:
    use(dead_ends, monkeypatch)
    night = NIGHT + timedelta(days=30)
    found = night_steps.find_triggers(night_steps.Night(as_of_date=night, target="prod", skip_training=True,
                                                        run_id=f"r-{night}", run_name="t"))
    assert [t.name for t in found.fired] == ["no_champion"] and not found.train
    assert found.action == "none: training skipped tonight (--skip-training)"
    [recorded] = [e for e in release_log.history(dead_ends) if e.event == "triggered" and e.as_of_date == night]
    assert recorded.details["action"] == found.action
    assert triggers_on(night + timedelta(days=1)).action == "retrain"
