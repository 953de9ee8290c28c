"""The bench's JSON figures and the shaping of its scaling curves."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from custlabel.devtools.benchmarks import world_end
from custlabel.devtools.benchmarks.curves import Curve, CurvePlan, shape
from custlabel.devtools.benchmarks.results import Record, document, write

PLAN = CurvePlan(sizes=[100, 300], history_days=[180, 540, 1080], rate_scales=[0.5, 4.0], base_customers=100, base_days=540)


def night(customers: int, days: int, seconds: float, scale: float = 1.0, share: float = 0.01) -> Record:
    return Record(
        "night", customers, days, seconds={"night_build": seconds},
        figures={"rate_scale": scale, "changed_share": share},
    )


def test_each_world_is_built_once_and_the_base_world_carries_every_rate() -> None:
    assert PLAN.worlds() == [(100, 540), (300, 540), (100, 180), (100, 1080)]
    assert PLAN.scales_of((100, 540)) == [1.0, 0.5, 4.0]
    assert PLAN.scales_of((300, 540)) == [1.0]
    assert PLAN.scales_of((100, 1080)) == [1.0]


def test_every_night_appended_to_a_world_is_over_by_today() -> None:
    today = date(2026, 12, 6)
    # the base world: its nights at three rates, then the nightly run of the night after
    assert PLAN.nights_after_world() == 4
    assert world_end(today, set(), PLAN) + timedelta(days=4) == today - timedelta(days=1)
    # the warehouse section: one night, then the nightly run
    assert world_end(today, {"warehouse"}, None) + timedelta(days=2) == today - timedelta(days=1)
    assert world_end(today, {"scoring"}, None) == today - timedelta(days=1)


def test_the_curves_take_their_points_from_the_nights_of_their_axis() -> None:
    records = [
        Record("world", 100, 540, seconds={"full_build": 60.0}),
        night(100, 540, 10.0, share=0.004), night(100, 540, 8.0, 0.5, 0.002), night(100, 540, 20.0, 4.0, 0.016),
        night(300, 540, 25.0),
        night(100, 180, 9.0), night(100, 1080, 11.0),
        Record("nightly", 300, 540, seconds={"nightly_run": 70.0}), Record("nightly", 100, 540, seconds={"nightly_run": 40.0}),
    ]
    customers, nightly_run, history, changed = shape(records, PLAN)
    assert customers == Curve("customers", "customers", [(100, 10.0), (300, 25.0)])
    assert nightly_run.points == [(100, 40.0), (300, 70.0)]
    assert history.points == [(180, 9.0), (540, 10.0), (1080, 11.0)]
    assert changed.points == [(0.002, 8.0), (0.004, 10.0), (0.016, 20.0)]
    assert changed.table()[1:] == ["         0.20%       8.0 s", "         0.40%      10.0 s", "         1.60%      20.0 s"]


def test_a_plan_without_a_curve_draws_none_of_it() -> None:
    only_sizes = CurvePlan([100, 300], [], [], 100, 540)
    assert only_sizes.worlds() == [(100, 540), (300, 540)]
    assert [curve.name for curve in shape([night(100, 540, 1.0), night(300, 540, 2.0)], only_sizes)] == ["customers"]


def test_the_json_holds_numbers_per_section_and_size_and_how_the_run_was_made(tmp_path: Path) -> None:
    records = [Record("world", 100, 540, seconds={"full_build": 61.5}, bytes={"full_build_peak_postgres_bytes": 2**30})]
    curve = Curve("customers", "customers", [(100, 10.0)])
    doc = document(
        records, ["custlabel", "bench", "--sizes", "100"], datetime(2026, 12, 5, 3, 0, tzinfo=timezone.utc),
        "abc123", {"cores": 2, "ram_bytes": 8 * 2**30}, {curve.name: curve.as_dict()},
    )
    path = write(tmp_path / "bench" / "latest.json", doc)
    read = json.loads(path.read_text())
    assert read["command"] == ["custlabel", "bench", "--sizes", "100"]
    assert read["date"] == "2026-12-05T03:00:00+00:00"
    assert read["git_commit"] == "abc123" and read["machine"] == {"cores": 2, "ram_bytes": 8 * 2**30}
    assert read["records"][0]["section"] == "world" and read["records"][0]["customers"] == 100
    assert read["records"][0]["seconds"] == {"full_build": 61.5}
    assert read["records"][0]["bytes"] == {"full_build_peak_postgres_bytes": 2**30}
    assert read["curves"]["customers"]["points"] == [[100, 10.0]]
    assert not list(path.parent.glob("*.partial"))
