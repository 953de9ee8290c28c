"""`custlabel bench` curves at tiny sizes on the real Postgres: the table, the PNGs and the JSON figures."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from custlabel.config import Settings
from custlabel.devtools.benchmarks import BENCH_DATABASE, run_all
from custlabel.devtools.benchmarks.curves import CurvePlan

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def bench_database(warehouse_settings: Settings) -> Iterator[None]:
    """The benchmark's database, dropped afterwards: other tests of the session's server expect none."""
    yield
    with psycopg.connect(warehouse_settings.connection.conninfo(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{BENCH_DATABASE}" with (force)')


def test_the_curves_are_measured_printed_drawn_and_written(
    warehouse_settings: Settings, bench_database: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = dataclasses.replace(warehouse_settings, local_dir=tmp_path)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    plan = CurvePlan(sizes=[300, 600], history_days=[180, 360], rate_scales=[3.0], base_customers=300, base_days=360)

    lines = run_all(settings, [], 360, set(), BENCH_DATABASE, plan, ["custlabel", "bench", "--sizes", "300,600"])

    doc = json.loads((tmp_path / "bench" / "latest.json").read_text())
    assert doc["command"] == ["custlabel", "bench", "--sizes", "300,600"]
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["ram_bytes"] > 0
    worlds = {(r["customers"], r["history_days"]): r for r in doc["records"] if r["section"] == "world"}
    nights = [r for r in doc["records"] if r["section"] == "night"]
    assert sorted(worlds) == [(300, 180), (300, 360), (600, 360)]
    assert len(nights) == 4
    runs = {r["customers"]: r for r in doc["records"] if r["section"] == "nightly"}
    assert sorted(runs) == [300, 600], "a whole nightly run on each world of the customers curve"
    for run in runs.values():
        steps = {name.removeprefix("step ") for name in run["seconds"] if name.startswith("step ")}
        assert {"source freshness", "dbt build", "score and publish", "monitoring refresh", "monitoring report",
                "triggers"} <= steps
        assert "train" not in steps, "the bootstrap trigger fires on a world without a model, and training is skipped"
        assert run["seconds"]["nightly_run"] >= run["seconds"]["step dbt build"] > 0
        assert run["bytes"]["nightly_run_peak_largest_process_bytes"] > 0
    for world in worlds.values():
        assert world["seconds"]["full_build"] > 0 and world["figures"]["sale_rows"] > 0
        assert world["bytes"]["full_build_peak_postgres_bytes"] > 0
    for night in nights:
        assert night["seconds"]["night_build"] > 0
        assert 0 < night["figures"]["changed_share"] < 1
        assert night["bytes"]["night_build_peak_postgres_bytes"] > 0
        assert night["bytes"]["night_build_peak_bench_bytes"] > 0
    shares = sorted(n["figures"]["changed_share"] for n in nights if n["customers"] == 300 and n["history_days"] == 360)
    assert shares[1] > shares[0], "three times the simulation's rates change more rows"

    assert set(doc["curves"]) == {"customers", "nightly_run", "history", "changed_rows"}
    assert [x for x, _ in doc["curves"]["customers"]["points"]] == [300, 600]
    assert [x for x, _ in doc["curves"]["nightly_run"]["points"]] == [300, 600]
    assert any(line.startswith("  custlabel nightly --skip-training, end to end: ") for line in lines)
    assert [x for x, _ in doc["curves"]["history"]["points"]] == [180, 360]
    assert len(doc["curves"]["changed_rows"]["points"]) == 2
    for name in ("customers", "nightly_run", "history", "changed_rows"):
        png = tmp_path / "bench" / f"nightly-{name}.png"
        assert png.read_bytes().startswith(PNG_SIGNATURE) and png.stat().st_size > 5_000
        assert f"  drawn: {png}" in lines

    shown = terminal.getvalue()
    assert "bench curves: 9/9 builds (100%)" in shown
    assert "demo-data: 600/600 customers (100%)" in shown
    assert re.search(r"dbt customer_features: (\d+)/\1 nights \(100%\)", shown), "a first build shows its nights"
    assert "bench: 0 sections" not in shown
