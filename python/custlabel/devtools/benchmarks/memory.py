"""Peak memory of a benchmark step: this process and its children, and the Postgres server's process tree."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import psutil

from custlabel.config import Settings
from custlabel.warehouse import db

# Reading a Postgres process's PSS costs about 7 ms of CPU: every 0.2 s, the sampler of an idle server took
# 22% of a core, taken from what it measures on two cores. A build's memory peaks last seconds.
SAMPLE_SECONDS = 1.0


@dataclass
class Peaks:
    """Bytes at the highest sample: each sum over a process tree, and the largest single process seen."""

    bench_bytes: int = 0
    postgres_bytes: int = 0
    largest_process_bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        """The peaks by name, for the JSON figures."""
        return {
            "peak_bench_bytes": self.bench_bytes,
            "peak_postgres_bytes": self.postgres_bytes,
            "peak_largest_process_bytes": self.largest_process_bytes,
        }


class PeakMemory:
    """Samples memory every second in a thread while the `with` block runs.

    A process counts its proportional share of shared memory (PSS) where the system
    tells it, so Postgres's shared buffers count once across its backends; else its RSS.
    """

    def __init__(self, settings: Settings) -> None:
        self.server = postmaster(settings)
        self.peaks = Peaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Peaks:
        self._sample()
        self._thread.start()
        return self.peaks

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def _sample(self) -> None:
        bench = tree_bytes(psutil.Process())
        server = tree_bytes(self.server) if self.server is not None else []
        self.peaks.bench_bytes = max(self.peaks.bench_bytes, sum(bench))
        self.peaks.postgres_bytes = max(self.peaks.postgres_bytes, sum(server))
        self.peaks.largest_process_bytes = max(self.peaks.largest_process_bytes, *bench, *server, 0)


def postmaster(settings: Settings) -> psutil.Process | None:
    """The server's postmaster when it runs on this machine (the parent of our backend), else None."""
    with db.connect(settings, autocommit=True) as conn:
        backend = conn.execute("select pg_backend_pid()").fetchone()[0]
        try:
            process = psutil.Process(backend)
            parent = process.parent()
        except psutil.Error:
            return None
    return parent if parent is not None and "postgres" in parent.name() else None


def tree_bytes(root: psutil.Process) -> list[int]:
    """The memory of a process and each of its descendants (those that ended meanwhile are skipped)."""
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    sizes = []
    for process in processes:
        try:
            sizes.append(_bytes(process))
        except psutil.Error:
            continue
    return sizes


def _bytes(process: psutil.Process) -> int:
    try:
        return process.memory_full_info().pss
    except (psutil.AccessDenied, AttributeError):
        return process.memory_info().rss
