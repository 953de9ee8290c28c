"""Long work shows done, rate and time left on a terminal, and prints nothing into a log."""

from __future__ import annotations

import io

from custlabel.warehouse.progress import Progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_half_of(stream: io.StringIO) -> None:
    clock = Clock()
    with Progress("demo-data", 1000, "customers", stream=stream, clock=clock) as progress:
        for _ in range(5):
            clock.now += 1.0
            progress.advance(100)


def test_a_terminal_sees_done_rate_and_time_left() -> None:
    terminal = FakeTerminal()
    run_half_of(terminal)
    lines = [line.strip() for line in terminal.getvalue().split("\r") if line.strip()]
    assert lines[0] == "demo-data: 100/1,000 customers (10%), 100 customers/s, 9 s left"
    assert lines[-1] == "demo-data: 500/1,000 customers (50%), 100 customers/s, 5 s left"
    assert terminal.getvalue().endswith("\n")


def test_a_log_or_ci_stream_gets_nothing() -> None:
    log = io.StringIO()
    run_half_of(log)
    assert log.getvalue() == ""


def test_a_total_unknown_shows_done_and_rate_only() -> None:
    terminal, clock = FakeTerminal(), Clock()
    progress = Progress("load sales.csv", None, "MiB", stream=terminal, clock=clock, scale=2**20)
    clock.now = 2.0
    progress.advance(8 * 2**20)
    assert terminal.getvalue() == "\rload sales.csv: 8 MiB, 4.0 MiB/s"
