"""Random sequences of operator commands and nights against the release authority, on a real Postgres and MLflow.

Hypothesis draws train / validate / approve / reject / promote / rollback / nightly / a champion
that cannot load, and after every step checks: each prod label row was labelled by the champion,
an approved canary on its slice, or a recorded fallback; the lifecycle (the release log), the
test's own model of the states and the registry's aliases agree; every state has a way out.

Kept cheap on purpose: one small demo warehouse built once, one fitted pipeline registered
again per version (with a good or a wrong threshold), validation verdicts recorded through the
lifecycle as `custlabel validate` records them (test_validate.py runs the real one), a canary of
one night, and the nightly steps called without Prefect.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from mlflow import MlflowClient
from psycopg import sql
from sklearn.linear_model import LogisticRegression

from custlabel.config import Settings, get_settings
from custlabel.errors import CustlabelError
from custlabel.gate_verdicts import GATES_PASSED_TAG
from custlabel.nightly import night_steps
from custlabel.release import approval, lifecycle, release_log, release_policy, rollout
from custlabel.scoring import canary_slice, writeback
from custlabel.training import model_families, registry, training_data
from custlabel.training.features import MODEL_FEATURES
from custlabel.warehouse import db, dbt_runner
from helpers.flow_world import flow_world
from helpers.night_config import release_file, release_text
from helpers.release_path import record_validation

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 6, 30)
# The shipped checks, one canary night: every night replays the same warehouse night.
RELEASE_CHANGES = {"canary": {"nights": 1}}
POLICY = release_policy.parse(release_text(RELEASE_CHANGES))
THRESHOLDS = (0.5, 0.35, 0.01)  # 0.01 labels almost everyone bad: a canary or champion that must not pass
MAX_VERSIONS = 7
STEPS = {"count": 0}
DONE: dict[str, int] = {}  # what the histories did, printed at the end


def tally(what: str) -> None:
    DONE[what] = DONE.get(what, 0) + 1
ROLES = ("business owner", "data scientist", "nightly run", "ML engineer")
WAITING = (lifecycle.REGISTERED, lifecycle.VALIDATED, lifecycle.APPROVED)


@pytest.fixture(scope="module")
def world(make_database, tmp_path_factory) -> Iterator[tuple[Settings, object, Path]]:
    """A built demo warehouse of its own and a cheap fitted pipeline; os.environ points the nightly steps at it."""
    local = tmp_path_factory.mktemp("state-machine")
    with flow_world(make_database, "release_state_machine", NIGHT, local) as patch:
        patch.setenv("CUSTLABEL_RELEASE_FILE", str(release_file(local, RELEASE_CHANGES)))
        settings = get_settings()
        dbt_runner.run(settings, ["build"], target="prod", as_of_date=str(NIGHT))
        rows = training_data.normalize(db.read_frame(
            settings, "select * from analytics.training_set order by customer_id limit 600"))
        pipeline = model_families.build_pipeline(LogisticRegression(max_iter=300)).fit(rows[MODEL_FEATURES], rows["is_bad"])
        yield settings, pipeline, local


def fresh_store(settings: Settings, local: Path, number: int) -> Settings:
    """An empty registry and an empty release log and label tables for one example."""
    folder = local / f"example-{number}"
    shutil.rmtree(folder, ignore_errors=True)
    with db.connect(settings) as conn:
        for table in (release_log.TABLE, writeback.LABELS, writeback.HISTORY, "canary_shadow_labels"):
            conn.execute(sql.SQL("drop table if exists {} cascade").format(sql.Identifier("analytics", table)))
    return replace(settings, mlflow_tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
                   mlflow_artifact_root=folder / "artifacts")


def labelled_by(settings: Settings) -> list[tuple[str, str, str]]:
    with db.connect(settings) as conn:
        if not db.relation_exists(conn, "analytics", writeback.LABELS):
            return []
        return conn.execute("select customer_id, model_name, model_version from analytics.customer_labels").fetchall()


def test_random_release_histories_keep_the_invariants(world, monkeypatch) -> None:
    base, pipeline, local = world
    sample = training_data.normalize(db.read_frame(
        base, "select * from analytics.customer_features_current limit 200"))[MODEL_FEATURES]
    examples = {"count": 0}

    class ReleaseHistory(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            examples["count"] += 1
            self.settings = fresh_store(base, local, examples["count"])
            monkeypatch.setenv("MLFLOW_TRACKING_URI", self.settings.mlflow_tracking_uri)
            self.states: dict[str, str] = {}
            self.against: dict[str, str | None] = {}
            self.was_champion: set[str] = set()
            self.champion: str | None = None
            self.previous: str | None = None
            self.canary: str | None = None
            self.deleted: set[str] = set()
            self.allowed: set[tuple[str, str]] = set()

        # -- the test's own model of the lifecycle ------------------------------------------------
        def promote_in_model(self, version: str) -> None:
            if self.champion and self.champion != version:
                if self.previous:
                    self.states[self.previous] = lifecycle.RETIRED
                self.previous, self.states[self.champion] = self.champion, lifecycle.PREVIOUS_CHAMPION
            self.champion, self.states[version] = version, lifecycle.CHAMPION
            self.was_champion.add(version)
            self.canary = None if self.canary == version else self.canary

        def log_size(self) -> int:
            return len(release_log.history(self.settings))

        def refused(self, action, *args) -> bool:
            """Run a command; True when it was refused, and then nothing was written."""
            before = self.log_size()
            try:
                action(*args)
            except CustlabelError:
                assert self.log_size() == before, "a refused command wrote to the release log"
                tally(f"{action.__name__} refused")
                return True
            tally(action.__name__)
            return False

        def draw_version(self, data, legal) -> str:
            """Mostly a version the model says the move is legal for (so histories go somewhere), else any."""
            aimed = sorted((v for v in self.states if legal(v)), key=int)
            pool = aimed if aimed and data.draw(st.integers(0, 3)) else sorted(self.states, key=int)
            return data.draw(st.sampled_from(pool))

        def may_validate(self, version: str) -> bool:
            return self.states[version] in lifecycle.VALIDATABLE

        def may_approve(self, version: str) -> bool:
            return self.states[version] == lifecycle.VALIDATED and self.against[version] == self.champion

        def may_reject(self, version: str) -> bool:
            return self.states[version] in WAITING

        def may_promote(self, version: str) -> bool:
            state = self.states[version]
            return state == lifecycle.CANARY or (state == lifecycle.APPROVED and self.against[version] == self.champion)

        def may_roll_back_to(self, version: str | None) -> bool:
            return version is not None and version in self.was_champion and version != self.champion

        def register(self, threshold: float, passed: bool) -> str:
            with registry.training_run(self.settings, "state machine", {"kind": "test"}):
                version = registry.register_model(self.settings, pipeline, sample, threshold,
                                                  model_families.trusted_types())
            registry.tag_version(self.settings, version, {GATES_PASSED_TAG: str(passed).lower(), "threshold": repr(threshold),
                                                          "test_date": "2026-03-01"})
            lifecycle.register(self.settings, version, "state machine", "trained", {}, None, [] if passed else ["lift: low"])
            self.states[version] = lifecycle.REGISTERED if passed else lifecycle.REJECTED
            return version

        # -- operator commands --------------------------------------------------------------------
        @precondition(lambda self: len(self.states) < MAX_VERSIONS)
        @rule(threshold=st.sampled_from(THRESHOLDS), passed=st.booleans())
        def train(self, threshold: float, passed: bool) -> None:
            self.register(threshold, passed)
            tally("train")

        @precondition(lambda self: self.states)
        @rule(data=st.data(), passed=st.booleans())
        def validate(self, data, passed: bool) -> None:
            version = self.draw_version(data, self.may_validate)
            legal = self.may_validate(version)
            assert self.refused(record_validation, self.settings, version, passed) != legal
            if legal:
                self.states[version] = lifecycle.VALIDATED if passed else lifecycle.VALIDATION_FAILED
                self.against[version] = self.champion

        @precondition(lambda self: self.states)
        @rule(data=st.data())
        def approve(self, data) -> None:
            version = self.draw_version(data, self.may_approve)
            legal = self.may_approve(version)
            assert self.refused(approval.approve, self.settings, version, "alice") != legal
            if legal:
                self.states[version] = lifecycle.APPROVED

        @precondition(lambda self: self.states)
        @rule(data=st.data())
        def reject(self, data) -> None:
            version = self.draw_version(data, self.may_reject)
            legal = self.may_reject(version)
            assert self.refused(approval.reject, self.settings, version, "bob", "not convinced") != legal
            if legal:
                self.states[version] = lifecycle.REJECTED

        @precondition(lambda self: self.states)
        @rule(data=st.data())
        def promote(self, data) -> None:
            version = self.draw_version(data, self.may_promote)
            legal = self.may_promote(version)
            assert self.refused(approval.promote, self.settings, version, "carol") != legal
            if legal:
                self.promote_in_model(version)

        @precondition(lambda self: any(s in WAITING for s in self.states.values()))
        @rule(data=st.data())
        def forward(self, data) -> None:
            """The happy path's next step for a waiting version: validate (again), approve, or promote at once."""
            version = data.draw(st.sampled_from(sorted((v for v, s in self.states.items() if s in WAITING), key=int)))
            if self.may_promote(version):
                assert not self.refused(approval.promote, self.settings, version, "carol")
                self.promote_in_model(version)
            elif self.may_approve(version):
                assert not self.refused(approval.approve, self.settings, version, "alice")
                self.states[version] = lifecycle.APPROVED
            else:
                assert not self.refused(record_validation, self.settings, version, True)
                self.states[version], self.against[version] = lifecycle.VALIDATED, self.champion

        @precondition(lambda self: self.states)
        @rule(data=st.data(), default=st.booleans(), next_night=st.booleans())
        def rollback(self, data, default: bool, next_night: bool) -> None:
            to = None if default else self.draw_version(data, self.may_roll_back_to)
            target = self.previous if to is None else to
            legal = self.may_roll_back_to(target)
            before = labelled_by(self.settings)
            refused = self.refused(rollout.rollback, self.settings, "prod", to, "dave", "a complaint", next_night)
            if not legal:
                assert refused
                return
            if refused:  # a legal move may still fail to republish (a deleted target, the bad-share bound)
                assert labelled_by(self.settings) == before
                return
            if self.champion:
                self.states[self.champion] = lifecycle.ROLLED_BACK
            self.previous = None if self.previous == target else self.previous
            self.champion, self.states[target] = target, lifecycle.CHAMPION
            if not next_night:
                self.allowed = {("customer-labels", target)}

        @precondition(lambda self: self.champion and self.champion not in self.deleted)
        @rule()
        def lose_the_champion(self) -> None:
            MlflowClient(self.settings.mlflow_tracking_uri).delete_model_version(self.settings.model_name, self.champion)
            self.deleted.add(self.champion)

        # -- the night ----------------------------------------------------------------------------
        @rule()
        def nightly_run(self) -> None:
            night = night_steps.Night(as_of_date=NIGHT, target="prod", run_id=f"r{STEPS['count']}", run_name="sm")
            since = max((e.event_id for e in release_log.history(self.settings)), default=0)
            waiting = sorted((v for v, s in self.states.items() if s == lifecycle.APPROVED
                              and int(v) > int(self.champion or 0)), key=int)
            state = night_steps.prepare_release(night)
            starts = self.canary is None and bool(waiting) and self.against[waiting[-1]] == self.champion
            assert (state.canary != self.canary) == starts, "a canary started that should not have, or the reverse"
            if starts:
                self.canary, self.states[waiting[-1]] = waiting[-1], lifecycle.CANARY
            try:
                published = night_steps.score_and_publish(night)
            except CustlabelError:
                published = None  # refused to publish (e.g. the bad-share bound): the last labels stay
            if published is not None:
                self.allowed = {(part.model_name, part.model_version) for part in published.labels.slices if part.role == "champion"}
                if published.fallback:
                    assert any(e.event == "fallback" and e.as_of_date == NIGHT and e.reason == published.fallback
                               for e in release_log.history(self.settings)), "a fallback that was not recorded"
                elif published.canary_version:
                    self.allowed.add(("customer-labels", published.canary_version))
                if published.canary_version:
                    verdict = night_steps.check_canary(night, published)
                    if verdict.republished is not None:
                        self.allowed -= {("customer-labels", published.canary_version)}
            for event in release_log.history(self.settings):
                if event.event_id <= since:
                    continue
                tally(f"night: {event.event}")
                if event.event == "promoted":
                    self.promote_in_model(event.model_version)
                elif event.event == "rolled_back":
                    self.states[event.model_version], self.canary = lifecycle.ROLLED_BACK, None
            found = night_steps.find_triggers(night)
            tally(f"night: triggers {found.action.split(':')[0]}")
            if found.train:
                self.register(THRESHOLDS[0], True)

        # -- after every step ---------------------------------------------------------------------
        @invariant()
        def count(self) -> None:
            STEPS["count"] += 1  # once before the first step of each example too

        @invariant()
        def the_log_and_the_model_agree(self) -> None:
            now = lifecycle.read(self.settings)
            assert {v: s.state for v, s in now.versions.items()} == self.states
            assert (now.champion, now.previous_champion, now.canary) == (self.champion, self.previous, self.canary)

        @invariant()
        def the_aliases_are_the_logs_projection(self) -> None:
            wanted = lifecycle.read(self.settings).aliases()
            shown = {alias: version for alias, version in wanted.items() if version not in self.deleted}
            assert registry.alias_versions(self.settings) == shown

        @invariant()
        def prod_is_labelled_only_by_whom_the_release_allows(self) -> None:
            rows = labelled_by(self.settings)
            assert {(name, version) for _, name, version in rows} <= self.allowed or not rows
            champion = ("customer-labels", self.champion)
            for customer_id, name, version in rows:
                if (name, version) != champion and name == "customer-labels" and version == self.canary:
                    assert canary_slice.bucket(customer_id) < POLICY.canary.percent

        @invariant()
        def every_state_has_a_way_out(self) -> None:
            now = lifecycle.read(self.settings)
            for line in now.waiting_for():
                assert any(role in line for role in ROLES), line
            for version in now.versions.values():
                assert lifecycle.NEXT_STEP[version.state]
            state = rollout.read_state(self.settings, POLICY)
            if state.on_its_way is not None:
                assert now.state_of(state.on_its_way) in lifecycle.ON_ITS_WAY

    run_state_machine_as_test(ReleaseHistory, settings=settings(
        max_examples=5, stateful_step_count=50, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))
    steps = STEPS["count"] - examples["count"]
    print(f"{steps} steps in {examples['count']} release histories: {dict(sorted(DONE.items()))}")
    assert steps >= 200, f"only {steps} steps ran"
