"""The fault tests' figures, printed as one table at the end of the session (`make faults`, `make test`).

A pytest plugin (tests/conftest.py loads it). The figures travel in the tests' reports, so that
the table is whole when pytest-xdist runs the tests in workers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

PROPERTY = "fault figure"
FIGURES: list[tuple[str, str, str]] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[list[tuple[str, str, str]]]:
    """Rows (fault, figure, value) the test measured."""
    rows: list[tuple[str, str, str]] = []
    yield rows
    request.node.user_properties.extend((PROPERTY, tuple(row)) for row in rows)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "teardown":
        FIGURES.extend(tuple(value) for name, value in report.user_properties if name == PROPERTY)


def pytest_terminal_summary(terminalreporter) -> None:
    if not FIGURES:
        return
    widths = [max(len(row[i]) for row in [("fault", "figure", "value"), *FIGURES]) for i in range(3)]
    terminalreporter.section("fault and load figures")
    for row in [("fault", "figure", "value"), tuple("-" * width for width in widths), *FIGURES]:
        terminalreporter.write_line("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
