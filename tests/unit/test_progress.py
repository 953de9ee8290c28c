"""Long work shows done, rate and time left on a terminal, and prints nothing into a log."""

from __future__ import annotations

import io
from types import SimpleNamespace

from custlabel.warehouse.dbt_runner import NightsProgress
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


def dbt_event(name: str, **data) -> SimpleNamespace:
    return SimpleNamespace(info=SimpleNamespace(name=name), data=SimpleNamespace(**data))


def test_a_first_dbt_build_shows_the_nights_of_each_history_mart_from_the_model_start() -> None:
    terminal, clock = FakeTerminal(), Clock()
    nights = NightsProgress(stream=terminal, clock=clock)
    nights.on_event(dbt_event("NodeStart", node_info=SimpleNamespace(node_name="customer_features")))
    for done in range(1, 5):
        clock.now += 10.0
        nights.on_event(dbt_event("JinjaLogDebug", msg=f"night_by_night customer_features: night {done}/4 built"))
    nights.on_event(dbt_event("JinjaLogDebug", msg="night_by_night training_set: night 1/1 built"))
    nights.on_event(dbt_event("JinjaLogDebug", msg="some other macro's log line"))

    lines = [line.strip() for line in terminal.getvalue().split("\r") if line.strip()]
    assert lines[0] == "dbt customer_features: 2/4 nights (50%), 0.1 nights/s, 20 s left"  # rate from the model start
    assert lines[-1] == "dbt customer_features: 4/4 nights (100%), 0.1 nights/s, 0 s left"
    assert "training_set" not in terminal.getvalue()  # an incremental night is one statement: nothing to show
