"""Which markers a test must carry, judged by the fixtures it uses (the fast tier runs `-m "not integration"`).

A pytest plugin (tests/conftest.py loads it): a test that lacks them fails before its fixtures start.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

# The session's Postgres: every database fixture of the suite depends on it.
DATABASE_FIXTURES = frozenset({"warehouse_settings"})
# Fixtures that build a whole world: demo master data and a dbt build, or a nightly flow.
WORLD_FIXTURES = frozenset({"built_warehouse", "flow_env"})


def missing_markers(fixture_names: Iterable[str], markers: Iterable[str]) -> dict[str, list[str]]:
    """The markers a test lacks, each with the fixtures that require it."""
    used, carried = set(fixture_names), set(markers)
    required = {"integration": sorted(used & DATABASE_FIXTURES), "slow": sorted(used & WORLD_FIXTURES)}
    return {marker: fixtures for marker, fixtures in required.items() if fixtures and marker not in carried}


def complaint(test: str, missing: dict[str, list[str]]) -> str:
    """The error an unmarked test fails with: what it uses, the marker to add, where."""
    needs = "; ".join(f"`{marker}` (it uses {', '.join(fixtures)})" for marker, fixtures in missing.items())
    marks = ", ".join(f"pytest.mark.{marker}" for marker in missing)
    return (
        f"{test} is not marked {needs}: add `pytestmark = [{marks}]` to its module (or the decorator to the test); "
        '`make test-fast` runs what is not marked integration (-m "not integration") and must not need Postgres'
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail, before any fixture starts, a test that uses the database or a whole world without saying so."""
    missing = missing_markers(item.fixturenames, (mark.name for mark in item.iter_markers()))
    if missing:
        pytest.fail(complaint(item.nodeid, missing), pytrace=False)
