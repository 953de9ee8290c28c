"""The operator's interface: `custlabel serve` in one terminal, `prefect deployment run` in another.

Exactly as the README and docs/operations.md say, with no Prefect server set up beforehand: serve starts a
local Prefect server (the schedule needs one), and `prefect deployment run` without
PREFECT_API_URL reaches the same Prefect database.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import date

import httpx
import pytest

from custlabel.warehouse import db

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 7, 1)
CRON = "0 3 * * *"
DEPLOYMENT = "nightly-customer-labels/nightly"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert process.poll() is None, f"custlabel serve exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)
    return value


@pytest.fixture
def served(flow_settings, tmp_path):
    """`custlabel serve` running with a Prefect home of its own; stopped like an operator would (Ctrl-C)."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    log = open(tmp_path / "serve.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "custlabel.cli", "serve", "--cron", CRON, "--target", "prod", "--prefect-port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"

    def deployment():
        try:
            response = httpx.get(f"{api}/deployments/name/{DEPLOYMENT}", timeout=5)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    try:
        yield env, api, wait_for(deployment, 240, "the served deployment", process), process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def test_prefect_deployment_run_starts_a_served_run(served, flow_settings):
    env, api, deployment, process = served
    assert [s["schedule"]["cron"] for s in deployment["schedules"]] == [CRON]
    assert deployment["parameters"] == {"target": "prod"}

    triggered = subprocess.run(
        [sys.executable, "-m", "prefect", "deployment", "run", DEPLOYMENT, "--param", f"as_of_date={NIGHT}"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert triggered.returncode == 0, triggered.stdout + triggered.stderr
    run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", triggered.stdout).group(1)

    def finished():
        state = httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()["state"]
        return state if state["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

    state = wait_for(finished, 900, "the flow run to finish", process)
    assert state["type"] == "COMPLETED", state["message"]
    with db.connect(flow_settings) as conn:
        outcome, night = conn.execute(
            "select outcome, as_of_date from analytics.pipeline_runs where run_id = %s", [run_id]
        ).fetchone()
        published = conn.execute("select distinct as_of_date from analytics.customer_labels").fetchall()
    assert (outcome, night) == ("succeeded", NIGHT)
    assert published == [(NIGHT,)]
