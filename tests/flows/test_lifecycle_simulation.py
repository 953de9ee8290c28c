"""`custlabel simulate` shows a model's whole lifecycle through the real nightly flow on a real Postgres, with the
repository's release.yml, acceptance.yml and alerts.yml as shipped (issue 19).

A small demo world: the rule baseline labels night one, a version is trained, validated
and auto-approved; it labels its canary slice for release.yml's canary nights (its bad
share differs from the rule's, which is reported, not judged) and is promoted; the last
line says which version is champion. Then a wrongly thresholded challenger approved by
mistake is rolled back by its canary checks against the registered champion.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import pytest

from custlabel.config import Settings, get_settings
from custlabel.demo import simulation
from custlabel.nightly import serving
from custlabel.release import release_log, release_policy
from custlabel.training import registry
from helpers.flow_world import flow_world
from helpers.night_config import SMALL_SEARCH

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def settings(make_database, tmp_path_factory) -> Iterator[Settings]:
    local = tmp_path_factory.mktemp("lifecycle-local")
    with flow_world(make_database, "lifecycle", date(2026, 6, 30), local) as patch:
        for variable, value in SMALL_SEARCH.items():
            patch.setenv(variable, value)
        yield get_settings()


@pytest.fixture(scope="module")
def canary_nights(settings) -> int:
    return release_policy.load(settings=settings).canary.nights


@pytest.fixture(scope="module")
def lifecycle(settings, canary_nights) -> list[str]:
    from prefect.testing.utilities import prefect_test_harness

    nights = 1 + canary_nights + 1
    with serving.patient_prefect(), prefect_test_harness(server_startup_timeout=180):
        lines = list(simulation.run(settings, nights, target="prod", seed=3,
                                    i_mean_database=settings.connection.dbname, inject_bad_challenger_on=nights))
    print("\n".join(lines))
    for event in release_log.history(settings):
        if event.event == "canary_night":
            print(event.as_of_date, event.model_version, *(f"{c['name']} {c['verdict']}: {c['reason']}" for c in event.details["checks"]), sep="\n  ")
    return lines


def test_the_shipped_configuration_takes_a_model_from_the_rule_to_champion(lifecycle, settings, canary_nights):
    first, *canary, bad, last = lifecycle
    assert len(canary) == canary_nights == 3
    assert "labelled by rule-baseline (unregistered)" in first
    assert "triggered (bootstrap; retrain)" in first and "trained v1" in first
    assert "validated v1" in first and "approved v1" in first
    assert "canary_started v1" in canary[0]
    for night in canary:
        assert "labelled by customer-labels v1" in night and "labelled by rule-baseline" in night
        assert "canary_night v1 (healthy; bad " in night and "on its slice, the rule's " in night
        assert "rolled_back" not in night
    assert "promoted v1" in canary[-1] and "promoted" not in " ".join(canary[:-1])
    kinds = [event.event for event in release_log.history(settings)]
    assert kinds.count("canary_night") >= canary_nights and kinds.count("promoted") == 1


def test_a_bad_challenger_is_rolled_back_against_the_registered_champion(lifecycle, settings):
    bad = lifecycle[-2]
    # The version number depends on what the triggers trained since v1's promotion.
    version = re.search(r"injected bad challenger v(\d+)", bad).group(1)
    assert f"canary_started v{version}" in bad
    assert f"rolled_back v{version} (canary checks failed: canary_bad_share: bad share" in bad
    (rolled,) = [e for e in release_log.history(settings) if e.event == "rolled_back"]
    assert rolled.model_version == version
    assert "canary_champion_bad_share: bad share" in rolled.reason and "against the champion's" in rolled.reason


def test_the_last_line_says_which_version_is_champion(lifecycle, settings):
    assert registry.alias_versions(settings)["champion"] == "1"
    assert lifecycle[-1] == "champion: customer-labels v1, a registered model (promoted 2026-07-04: 3 healthy canary nights)"
