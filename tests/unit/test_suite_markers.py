"""The suite's markers are enforced: a test that uses the database or a whole world must say so (`make test-fast`)."""

from __future__ import annotations

import pytest

from helpers import markers

CONFTEST = '''
import pytest

pytest_plugins = ["helpers.markers"]


@pytest.fixture(scope="session")
def warehouse_settings(pytestconfig):
    (pytestconfig.rootpath / "server-started").touch()
    return "the session's server"


@pytest.fixture(scope="session")
def built_warehouse(warehouse_settings):
    return warehouse_settings
'''

TESTS = '''
import pytest


def test_unmarked_but_uses_the_database(warehouse_settings):
    pass


@pytest.mark.integration
def test_marked_integration(warehouse_settings):
    pass


@pytest.mark.integration
def test_builds_a_world_but_is_not_marked_slow(built_warehouse):
    pass


@pytest.mark.integration
@pytest.mark.slow
def test_builds_a_world_marked_slow(built_warehouse):
    pass


def test_a_unit():
    pass
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    integration: needs Postgres\n    slow: builds a whole world\n")
    pytester.makepyfile(test_tiers=TESTS)
    return pytester


def test_an_unmarked_database_test_fails_in_the_fast_tier_before_the_server_starts(suite: pytest.Pytester) -> None:
    result = suite.runpytest("-m", "not integration")
    result.assert_outcomes(passed=1, errors=1, deselected=3)
    result.stdout.fnmatch_lines([
        "*test_unmarked_but_uses_the_database is not marked `integration` (it uses warehouse_settings): "
        "add `pytestmark = [[]pytest.mark.integration[]]`*make test-fast*",
    ])
    assert not (suite.path / "server-started").exists()


def test_a_world_test_not_marked_slow_fails_in_the_whole_suite(suite: pytest.Pytester) -> None:
    result = suite.runpytest()
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines([
        "*test_unmarked_but_uses_the_database is not marked `integration`*",
        "*test_builds_a_world_but_is_not_marked_slow is not marked `slow` (it uses built_warehouse)*",
    ])


def test_the_markers_a_test_lacks_are_named_with_the_fixtures_that_need_them() -> None:
    assert markers.missing_markers({"tmp_path"}, []) == {}
    assert markers.missing_markers({"warehouse_settings", "tmp_path"}, []) == {"integration": ["warehouse_settings"]}
    assert markers.missing_markers({"warehouse_settings", "flow_env"}, ["integration"]) == {"slow": ["flow_env"]}
    assert markers.missing_markers({"warehouse_settings", "built_warehouse"}, ["integration", "slow"]) == {}
