"""The release log: events append with who and why, per target, and bad events are refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from custlabel.config import Settings
from custlabel.release import release_log

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(make_database) -> Settings:
    return make_database("releases_it")


def test_events_append_in_order_with_actor_reason_and_details(settings: Settings) -> None:
    prod = replace(settings, target="prod")
    release_log.record(prod, release_log.ReleaseEvent("trained", "customer-labels", "3", "nightly run x", "no champion yet"))
    release_log.record(
        prod,
        release_log.ReleaseEvent("approved", "customer-labels", "3", "alice", "reviewed the report", {"note": "ok"}),
    )
    events = release_log.history(prod, model_version="3")
    assert [event.event for event in events] == ["trained", "approved"]
    assert events[1].actor == "alice" and events[1].details == {"note": "ok"}


def test_a_test_target_writes_its_own_log(settings: Settings) -> None:
    test = replace(settings, target="test")
    release_log.record(test, release_log.ReleaseEvent("validated", "customer-labels", "4", "validate"))
    assert [event.model_version for event in release_log.history(test)] == ["4"]
    assert "4" not in {event.model_version for event in release_log.history(replace(settings, target="prod"))}


def test_unknown_event_is_refused_and_nothing_written(settings: Settings) -> None:
    prod = replace(settings, target="prod")
    before = len(release_log.history(prod))
    with pytest.raises(release_log.UnknownReleaseEventError, match="unknown release event 'deployed'"):
        release_log.record(prod, release_log.ReleaseEvent("deployed", "customer-labels", "3", "bob"))
    assert len(release_log.history(prod)) == before
