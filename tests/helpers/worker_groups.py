"""Which tests share a pytest-xdist worker under `--dist loadgroup` (`make test`).

A pytest plugin (tests/conftest.py loads it). A module runs on one worker, so its module
fixtures are built once; all the modules that use one session world run on one worker, so
the world is built once; a test's own `xdist_group` mark wins. The groups that build whole
worlds are handed out first (`make test` passes --no-loadscope-reorder, so xdist keeps the order).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.nodeid import NodeId

SHARED_WORLDS = ("built_warehouse", "flow_env")
# The tests on a local Spark session share one worker, so one JVM: its first night costs about a minute more
# than the next (the JVM warming up), and two JVMs at once would share the machine's two cores.
SHARED_JVM = "spark"


def group_names(items: list[pytest.Item]) -> dict[str, str]:
    """Each test's group (by node id): the Spark group for a test marked spark, else the first session world its
    module uses, else its module."""
    module_worlds: dict[Path, set[str]] = {}
    for item in items:
        module_worlds.setdefault(item.path, set()).update(set(item.fixturenames) & set(SHARED_WORLDS))
    return {
        item.nodeid: SHARED_JVM if item.get_closest_marker(SHARED_JVM) is not None
        else min(module_worlds[item.path], default=item.nodeid.partition("::")[0])
        for item in items
    }


@pytest.hookimpl(tryfirst=True)  # before xdist's worker appends the group to each node id
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("loadgroup", False):  # xdist sets it in each worker for --dist loadgroup
        return
    groups = group_names(items)
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
    items[:] = slow_groups_first(items)
    for item in items:
        _send_group(item)


def _group(item: pytest.Item) -> str:
    return "_".join(sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                            for mark in item.iter_markers("xdist_group")}))


def slow_groups_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """The groups that build whole worlds first (the longest work first keeps the workers' ends even),
    each group's tests together and in their order."""
    first_seen: dict[str, int] = {}
    builds_worlds: set[str] = set()
    for index, item in enumerate(items):
        first_seen.setdefault(_group(item), index)
        if item.get_closest_marker("slow") is not None:
            builds_worlds.add(_group(item))
    return sorted(items, key=lambda item: (_group(item) not in builds_worlds, first_seen[_group(item)]))


def _send_group(item: pytest.Item) -> None:
    """Append the group to the node id, which is how xdist's loadgroup scheduler reads it.

    xdist 3.8.0 does this through `item._nodeid`, which pytest 9.2 no longer reads, so the
    groups are silently ignored (pytest-dev/pytest-xdist#1386); the structured id is set here.
    """
    suffix = f"@{_group(item)}"
    if not item.nodeid.endswith(suffix):
        item._id = NodeId.parse(item.nodeid + suffix)
