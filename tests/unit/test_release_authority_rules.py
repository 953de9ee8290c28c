"""One release authority: only the lifecycle writes the release log and moves the release aliases."""

from __future__ import annotations

import ast
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from custlabel.release import lifecycle, release_policy
from custlabel.release.release_log import RecordedEvent

PACKAGE = Path(__file__).resolve().parents[2] / "python" / "custlabel"
# Calls that move a release alias or append to the release log; only the lifecycle makes them
# (registry.py defines the alias calls and keeps the rule baseline's own `fallback` alias).
GUARDED = {"set_alias", "delete_alias", "set_registered_model_alias", "delete_registered_model_alias", "record",
           "ReleaseEvent"}
OWNERS = {"registry", "release_log", "client", "registry_client"}
ALLOWED = {"release/lifecycle.py", "training/registry.py", "release/release_log.py"}


def guarded_calls(path: Path) -> list[str]:
    """Calls like registry.set_alias(...) or release_log.record(...) in a file, as 'line owner.name'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in GUARDED:
            owner = getattr(node.func.value, "id", None) or ast.unparse(node.func.value)
            if owner in OWNERS or node.func.attr != "record":
                found.append(f"{node.lineno} {owner}.{node.func.attr}")
    return found


def test_only_the_lifecycle_moves_aliases_and_writes_the_release_log() -> None:
    offenders = [f"{path.relative_to(PACKAGE)}:{call}" for path in sorted(PACKAGE.rglob("*.py"))
                 if path.relative_to(PACKAGE).as_posix() not in ALLOWED for call in guarded_calls(path)]
    assert offenders == [], "go through custlabel.release.lifecycle instead: " + ", ".join(offenders)


def test_the_check_finds_a_side_door(tmp_path: Path) -> None:
    sample = tmp_path / "probe.py"
    sample.write_text("from custlabel.training import registry\nregistry.set_alias('champion', '3')\n"
                      "release_log.record(None, release_log.ReleaseEvent('approved', 'm', '3', 'mallory'))\n"
                      "run.record('not the release log')\n")
    assert [call.split(" ", 1)[1] for call in guarded_calls(sample)] == [
        "registry.set_alias", "release_log.record", "release_log.ReleaseEvent"]


def event(number: int, kind: str, version: str | None, night: date | None = None, **details) -> RecordedEvent:
    return RecordedEvent(number, datetime(2026, 7, 1, tzinfo=timezone.utc), kind, "customer-labels", version, night,
                         "someone", "", details)


def test_the_log_folds_into_states_and_aliases() -> None:
    log = [event(1, "trained", "1"), event(2, "validated", "1"), event(3, "approved", "1"),
           event(4, "canary_started", "1"), event(5, "promoted", "1"),
           event(6, "trained", "2"), event(7, "validated", "2"), event(8, "approved", "2"), event(9, "promoted", "2"),
           event(10, "trained", "3"), event(11, "validated", "3"), event(12, "approved", "3"), event(13, "promoted", "3"),
           event(14, "trained", "4"), event(15, "rejected", "4"), event(16, "trained", "5")]
    now = lifecycle.fold("customer-labels", log)
    assert {v: s.state for v, s in now.versions.items()} == {
        "1": "retired", "2": "previous_champion", "3": "champion", "4": "rejected", "5": "registered"}
    assert now.aliases() == {"champion": "3", "previous-champion": "2", "challenger": "5"}
    assert now.former_champions() == ["1", "2"] and now.on_its_way() == "5"
    back = lifecycle.fold("customer-labels", [*log, event(17, "rolled_back", "3", stage="champion", to="2")])
    assert (back.champion, back.previous_champion, back.state_of("3")) == ("2", None, "rolled_back")


def test_every_state_names_its_way_out() -> None:
    states = [lifecycle.REGISTERED, lifecycle.VALIDATED, lifecycle.VALIDATION_FAILED, lifecycle.APPROVED,
              lifecycle.REJECTED, lifecycle.CANARY, lifecycle.CHAMPION, lifecycle.PREVIOUS_CHAMPION, lifecycle.RETIRED,
              lifecycle.ROLLED_BACK]
    assert set(lifecycle.NEXT_STEP) == {None, *states}
    for state in lifecycle.CLOSED:
        assert "train a new version" in lifecycle.NEXT_STEP[state]


@pytest.mark.parametrize("log, waiting", [
    ([], "a first model: the rule baseline labels; a trigger trains a candidate"),
    ([event(1, "trained", "1"), event(2, "validation_failed", "1")], "the last candidate v1 was validation_failed"),
    ([event(1, "trained", "1"), event(2, "validated", "1")], "v1 awaits a decision: business owner"),
    ([event(1, "trained", "1")], "v1 awaits validation: the nightly run, or a data scientist"),
])
def test_the_product_says_what_it_waits_for_and_who_unblocks_it(log, waiting) -> None:
    assert waiting in " ".join(lifecycle.fold("customer-labels", log).waiting_for())


def test_cool_off_nights_is_validated() -> None:
    text = (PACKAGE.parents[1] / "release.yml").read_text()
    assert release_policy.parse(text).triggers.cool_off_nights == 3
    with pytest.raises(release_policy.ReleasePolicyError, match="cool_off_nights"):
        release_policy.parse(text.replace("cool_off_nights: 3", "cool_off_nights: -1"))
