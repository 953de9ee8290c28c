"""How Prefect runs and serves the nightly flow: the deployment on a schedule, a run here, a patient local Prefect.

The night's steps are `custlabel.nightly.night_steps`; `flows/nightly.py` is the flow.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import httpx
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Cron
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_SERVER_ANALYTICS_ENABLED,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    get_current_settings,
    temporary_settings,
)

from custlabel.config import Settings, exported, schema_for
from custlabel.errors import CustlabelError

DEPLOYMENT_NAME = "nightly"
FLOW_ENTRYPOINT = "flows/nightly.py:nightly_customer_labels"
DEFAULT_CRON = "0 2 * * *"
DEFAULT_PREFECT_PORT = 4200


def load_flow(settings: Settings) -> Flow:
    """The nightly flow, loaded from flows/nightly.py of the project."""
    path, function = FLOW_ENTRYPOINT.split(":")
    return load_flow_from_entrypoint(f"{settings.project_dir / path}:{function}")


@contextmanager
def patient_prefect(startup_seconds: int = 180) -> Iterator[None]:
    """Prefect settings for a machine shared with other work: a patient ephemeral-server start, no telemetry.

    Prefect's local mode starts a temporary API server per process and gives up
    after 20 s by default, which a busy 2-core machine can exceed.
    """
    timeout = max(get_current_settings().server.ephemeral.startup_timeout_seconds, startup_seconds)
    with temporary_settings(
        updates={PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: timeout, PREFECT_SERVER_ANALYTICS_ENABLED: False}
    ):
        yield


def _api_is_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the serving process dies, so no server is left behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: serve's own cleanup stops the server


@contextmanager
def prefect_api(settings: Settings, port: int = DEFAULT_PREFECT_PORT, timeout: float = 120.0) -> Iterator[str]:
    """The Prefect API to serve against: PREFECT_API_URL when set, else a local `prefect server` started here.

    A schedule needs a server (Prefect's ephemeral mode runs no scheduler); a
    local server on 127.0.0.1:<port> shares Prefect's default database, so
    `prefect deployment run` works from another terminal with or without
    PREFECT_API_URL set, and the UI is at http://127.0.0.1:<port>.
    """
    if settings.prefect_api_url:
        yield settings.prefect_api_url
        return
    url = f"http://127.0.0.1:{port}/api"
    process = None
    if not _api_is_up(url):
        settings.local_dir.mkdir(parents=True, exist_ok=True)
        log_path = settings.local_dir / "prefect-server.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while not _api_is_up(url):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
                raise CustlabelError(f"the local Prefect server on port {port} did not start; {log_path} ends:\n{tail}")
            time.sleep(0.5)
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def serve(
    settings: Settings,
    cron: str = DEFAULT_CRON,
    timezone: str | None = None,
    target: str | None = None,
    prefect_port: int = DEFAULT_PREFECT_PORT,
) -> None:
    """Serve the deployment `nightly-customer-labels/nightly` on a cron schedule until interrupted."""
    if settings.auto_approve:
        raise CustlabelError(
            "CUSTLABEL_AUTO_APPROVE is set: the served deployment never approves a version (its scheduled and "
            "operator-started runs wait for the business owner); unset it before `custlabel serve`"
        )
    target = target or settings.target
    timezone = timezone or settings.timezone
    schema_for(target)
    flow = load_flow(settings)
    with patient_prefect(), prefect_api(settings, prefect_port) as url:
        print(f"Prefect API {url} (UI: {url.removesuffix('/api')}); nightly at '{cron}' ({timezone}), target {target}")
        flow.serve(
            name=DEPLOYMENT_NAME,
            schedules=[Cron(cron, timezone=timezone)],
            parameters={"target": target},
            tags=["custlabel", target],
            description=f"Nightly customer labels for target {target}: freshness, dbt build, monitoring, "
            "training when needed, scoring and publishing.",
        )


def run_once(
    settings: Settings,
    as_of_date: date | None = None,
    target: str | None = None,
    retrain: bool = False,
    auto_approve: bool | None = None,
    dbt_vars: dict[str, Any] | None = None,
    skip_training: bool = False,
) -> str:
    """Run the flow once in this process (Prefect's local mode unless PREFECT_API_URL is set); returns the summary.

    Args:
        auto_approve: sets CUSTLABEL_AUTO_APPROVE for the run (None: as the environment has it).
    """
    flow = load_flow(settings)
    approval = {} if auto_approve is None else {"CUSTLABEL_AUTO_APPROVE": "1" if auto_approve else "0"}
    with patient_prefect(), exported(approval):
        return flow(as_of_date=as_of_date, target=target, retrain=retrain, dbt_vars=dbt_vars or {},
                    skip_training=skip_training)
