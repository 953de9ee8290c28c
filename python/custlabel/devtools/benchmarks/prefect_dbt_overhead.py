"""What a Prefect task per dbt node costs: the same `dbt build` through dbt_runner.run and through prefect-dbt.

Each variant runs in a fresh process (its peak RSS is that process's VmHWM), inside a
flow run on Prefect's temporary server (prefect_test_harness), as the nightly step runs:
`plain` calls dbtRunner as the nightly does today; `node_tasks` calls PrefectDbtRunner,
which makes a task run per node and forwards dbt's warnings to it. Both build the same
night with --full-refresh after a warm-up build, so both do the same work.

prefect-dbt is not a dependency of custlabel (docs/benchmarks.md says why); this section
needs the extra: `pip install -e '.[prefect-dbt-bench]'`.
"""

from __future__ import annotations

import json
import pickle
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.runtime import flow_run
from prefect.testing.utilities import prefect_test_harness

from custlabel.config import Settings
from custlabel.demo import loader
from custlabel.devtools.benchmarks import BENCH_DATABASE, fresh_process
from custlabel.errors import CustlabelError
from custlabel.warehouse import dbt_runner

VARIANTS = ("plain", "node_tasks")
# The nightly step's dbt logging: warnings and errors (PrefectDbtRunner forwards these to each node's task).
BUILD = ["build", "--full-refresh", "--log-level", "warn"]
HARNESS_STARTUP_SECONDS = 180


def _task_runs(flow_run_id: str) -> int:
    """Task runs the server holds for a flow run (they arrive as events: read until the count settles)."""
    runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    seen = -1
    with get_client(sync_client=True) as client:
        for _ in range(30):
            count, offset = 0, 0
            while page := client.read_task_runs(flow_run_filter=runs, limit=200, offset=offset):
                count += len(page)
                offset += 200
            if count == seen:
                return count
            seen = count
            time.sleep(1)
    return seen


def require_prefect_dbt() -> None:
    """Stop with the fix when prefect-dbt (the optional extra) is not installed."""
    try:
        import prefect_dbt  # noqa: F401
    except ImportError:
        raise CustlabelError(
            "the prefect_dbt bench section needs prefect-dbt, which custlabel does not depend on: "
            "pip install -e '.[prefect-dbt-bench]'"
        ) from None


def _prefect_dbt_invoker(settings: Settings) -> Callable[[list[str]], Any]:
    """PrefectDbtRunner's invoke: a task run per node in the current flow run; dbt's result, failed or not."""
    from prefect_dbt.core.runner import PrefectDbtRunner
    from prefect_dbt.core.settings import PrefectDbtSettings

    paths = PrefectDbtSettings(project_dir=settings.project_dir, profiles_dir=settings.dbt_profiles_dir)
    return PrefectDbtRunner(settings=paths, raise_on_failure=False).invoke


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def _build_child(job: Path) -> dict:
    """In the child process: one build of the variant inside a flow run; its time, nodes, task runs and peak RSS."""
    settings, variant, night = pickle.loads(job.read_bytes())

    @flow(name=f"dbt build ({variant})")
    def build() -> dict:
        # Made inside the flow run: the runner's Prefect client is the temporary server's.
        invoker = _prefect_dbt_invoker(settings) if variant == "node_tasks" else None
        started = time.perf_counter()
        result = dbt_runner.run(settings, BUILD, target="prod", as_of_date=night, invoker=invoker)
        return {"seconds": time.perf_counter() - started, "nodes": result.nodes, "flow_run_id": flow_run.id}

    with prefect_test_harness(server_startup_timeout=HARNESS_STARTUP_SECONDS):
        figures = build()
        figures["task_runs"] = _task_runs(figures.pop("flow_run_id"))
    figures["peak_mb"] = _peak_rss_mb()
    return figures


def measure(settings: Settings, variant: str, night: date) -> dict:
    """Build the night once through the variant in a fresh process; its figures."""
    job = (settings, variant, night.isoformat())
    return fresh_process.run("custlabel.devtools.benchmarks.prefect_dbt_overhead", job, f"{variant} dbt build")


def run(settings: Settings, customers: int, days: int, end_date: date) -> list[str]:
    """Load a world, build it once to warm up, then build it through each variant; the figures and the difference."""
    require_prefect_dbt()
    loader.generate_and_load(
        customers=customers, days=days, seed=1, end_date=end_date, settings=settings, i_mean_database=BENCH_DATABASE
    )
    started = time.perf_counter()
    dbt_runner.run(settings, BUILD, target="prod", as_of_date=end_date.isoformat())
    warm_up = time.perf_counter() - started
    plain, tasks = (measure(settings, variant, end_date) for variant in VARIANTS)
    extra = tasks["seconds"] - plain["seconds"]
    return [
        f"prefect-dbt: {customers:,} customers, dbt build --full-refresh of {end_date} (warm-up build {warm_up:.1f} s)",
        f"  dbt_runner (dbtRunner in a flow):      {plain['seconds']:.1f} s, {plain['nodes']} nodes, "
        f"{plain['task_runs']} task runs, peak RSS {plain['peak_mb']:,.0f} MB",
        f"  PrefectDbtRunner (a task per node):    {tasks['seconds']:.1f} s, {tasks['nodes']} nodes, "
        f"{tasks['task_runs']} task runs, peak RSS {tasks['peak_mb']:,.0f} MB",
        f"  difference: {extra:+.1f} s ({extra / plain['seconds']:+.1%} of the build), "
        f"{extra / tasks['nodes'] * 1000:+.0f} ms per node, peak RSS {tasks['peak_mb'] - plain['peak_mb']:+,.0f} MB",
    ]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_build_child(Path(sys.argv[2]))))
    else:
        sys.exit("usage: python -m custlabel.devtools.benchmarks.prefect_dbt_overhead --child JOB (custlabel bench runs it)")
