"""Progress of long work (done, rate, time left) redrawn on one line of a terminal; silent in logs and CI."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

REDRAW_SECONDS = 0.5


class Progress:
    """Counts units of work done out of a total and shows them on stderr, only when it is a terminal (and there is work)."""

    def __init__(
        self,
        what: str,
        total: float | None,
        unit: str,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        scale: float = 1.0,
        started: float | None = None,
    ) -> None:
        self.what, self.total, self.unit, self.scale = what, total, unit, scale
        self.stream = stream if stream is not None else sys.stderr
        self.shown = _is_terminal(self.stream) and total != 0
        self.clock = clock
        self.drawn_at = clock()
        self.started = self.drawn_at if started is None else started
        self.done = 0.0
        self.width = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def advance(self, count: float = 1) -> None:
        """Count `count` more units done; redraws at most every half second."""
        self.done += count
        now = self.clock()
        if self.shown and now - self.drawn_at >= REDRAW_SECONDS:
            self.drawn_at = now
            self._draw(now)

    def close(self) -> None:
        """Draw the final figures and end the line."""
        if self.shown:
            self._draw(self.clock())
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False

    def line(self, now: float) -> str:
        """e.g. 'demo-data: 40,000/100,000 customers (40%), 12,000 customers/s, 5 s left'."""
        elapsed = max(now - self.started, 1e-9)
        done = self.done / self.scale
        rate = done / elapsed
        text = f"{self.what}: {done:,.0f}"
        if self.total:
            total = self.total / self.scale
            text += f"/{total:,.0f} {self.unit} ({min(done / total, 1.0):.0%})"
        else:
            text += f" {self.unit}"
        text += f", {rate:,.1f} {self.unit}/s" if rate < 10 else f", {rate:,.0f} {self.unit}/s"
        if self.total and rate > 0:
            text += f", {_duration(max(self.total / self.scale - done, 0) / rate)} left"
        return text

    def _draw(self, now: float) -> None:
        text = self.line(now)
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
