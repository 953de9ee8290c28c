"""The fault tests' figures, printed as one table at the end of the session (`make faults`)."""

from __future__ import annotations

import pytest

FIGURES: list[tuple[str, str, str]] = []


@pytest.fixture(scope="session")
def figures() -> list[tuple[str, str, str]]:
    """Rows (fault, figure, value) the tests measured."""
    return FIGURES


def pytest_terminal_summary(terminalreporter) -> None:
    if not FIGURES:
        return
    widths = [max(len(row[i]) for row in [("fault", "figure", "value"), *FIGURES]) for i in range(3)]
    terminalreporter.section("fault and load figures")
    for row in [("fault", "figure", "value"), tuple("-" * width for width in widths), *FIGURES]:
        terminalreporter.write_line("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
