"""Scaling curves of the nightly build: against customers, history length and the share of changed rows.

Each point is the dbt build of one new night's changed data after a full build of a
demo world. Worlds are shared between curves: the history curve's point at the base
length, the size curve's point at the base size and the changed-rows curve's point at
the demo's rates are the same night.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
from matplotlib import pyplot  # noqa: E402

from custlabel.config import Settings
from custlabel.devtools.benchmarks import dbt_build
from custlabel.devtools.benchmarks.results import Record
from custlabel.warehouse.progress import Progress


@dataclass(frozen=True)
class CurvePlan:
    """What to measure: customer counts, history lengths at one size, and rate scales at that size and length."""

    sizes: list[int]
    history_days: list[int]
    rate_scales: list[float]
    base_customers: int
    base_days: int

    def worlds(self) -> list[tuple[int, int]]:
        """(customers, history days) of every world to build, each once, in the order they are built."""
        wanted = [(size, self.base_days) for size in self.sizes] + [(self.base_customers, days) for days in self.history_days]
        if self.rate_scales:
            wanted.append((self.base_customers, self.base_days))
        return list(dict.fromkeys(wanted))

    def runs_nightly(self, world: tuple[int, int]) -> bool:
        """Whether the world gets a whole nightly run after its nights: the worlds of the customers curve."""
        return world in {(size, self.base_days) for size in self.sizes}

    def nights_after_world(self) -> int:
        """The most nights appended to one world: its nights of the changed-rows curve and its nightly run."""
        return max((len(self.scales_of(world)) + self.runs_nightly(world) for world in self.worlds()), default=0)

    def scales_of(self, world: tuple[int, int]) -> list[float]:
        """The nights to build on a world: the demo's rates first, then the other scales of the changed-rows curve."""
        if world != (self.base_customers, self.base_days):
            return [1.0]
        return list(dict.fromkeys([1.0, *self.rate_scales]))


@dataclass(frozen=True)
class Curve:
    """One curve: its name, axis labels and (x, seconds) points sorted by x."""

    name: str
    x_label: str
    points: list[tuple[float, float]]
    y_label: str = "nightly dbt build seconds"

    def as_dict(self) -> dict:
        """The curve for the JSON figures."""
        return {"x": self.x_label, "y": self.y_label, "points": [list(point) for point in self.points]}

    def table(self) -> list[str]:
        """The curve as printed lines."""
        return [f"{self.name}: {self.y_label} against {self.x_label}"] + [
            f"  {_number(x):>12}  {seconds:8.1f} s" for x, seconds in self.points
        ]


def measure(settings: Settings, plan: CurvePlan, end_date: date) -> list[Record]:
    """Build each world of the plan and its nights, then, on the customers curve, a whole nightly run of the night
    after; prints each world's figures as it ends and returns the world, night and nightly records."""
    records: list[Record] = []
    steps = sum(1 + len(plan.scales_of(world)) + plan.runs_nightly(world) for world in plan.worlds())
    with Progress("bench curves", steps, "builds") as progress:
        for customers, days in plan.worlds():
            world = dbt_build.build_world(settings, customers, days, end_date)
            progress.advance()
            nights = []
            for scale in plan.scales_of((customers, days)):
                nights.append(dbt_build.build_night(settings, customers, days, scale))
                progress.advance()
            nightly = None
            if plan.runs_nightly((customers, days)):
                nightly = dbt_build.run_nightly(settings, customers, days)
                progress.advance()
            world.lines = dbt_build.lines(world, nights[0], nightly)
            print("\n".join(world.lines), flush=True)
            records += [world, *nights, *([nightly] if nightly else [])]
    return records


def shape(records: list[Record], plan: CurvePlan) -> list[Curve]:
    """The curves of the plan from the night records (at the demo's rates unless on the changed-rows curve)."""
    nights = [record for record in records if record.section == "night"]
    demo_rate = [night for night in nights if night.figures["rate_scale"] == 1.0]
    curves = []
    if plan.sizes:
        curves.append(Curve("customers", "customers", sorted(
            (night.customers, night.seconds["night_build"])
            for night in demo_rate if night.history_days == plan.base_days and night.customers in plan.sizes
        )))
    runs = [record for record in records if record.section == "nightly"]
    if plan.sizes and runs:
        curves.append(Curve("nightly_run", "customers", sorted(
            (run.customers, run.seconds["nightly_run"]) for run in runs
        ), y_label="custlabel nightly --skip-training seconds"))
    if plan.history_days:
        curves.append(Curve("history", f"history days at {plan.base_customers:,} customers", sorted(
            (night.history_days, night.seconds["night_build"])
            for night in demo_rate if night.customers == plan.base_customers and night.history_days in plan.history_days
        )))
    if plan.rate_scales:
        curves.append(Curve("changed_rows", f"share of sale rows changed at {plan.base_customers:,} customers", sorted(
            (night.figures["changed_share"], night.seconds["night_build"])
            for night in nights
            if (night.customers, night.history_days) == (plan.base_customers, plan.base_days)
            and night.figures["rate_scale"] in {1.0, *plan.rate_scales}
        )))
    return curves


def draw(curve: Curve, folder: Path) -> Path:
    """The curve as a PNG in the folder: nightly-<name>.png."""
    figure, axes = pyplot.subplots(figsize=(6, 4))
    xs, ys = zip(*curve.points) if curve.points else ((), ())
    axes.plot(xs, ys, marker="o")
    axes.set_xlabel(curve.x_label)
    axes.set_ylabel(curve.y_label)
    axes.set_ylim(bottom=0)
    axes.set_title(f"{curve.y_label.split(' seconds')[0]} against {curve.x_label}", fontsize=9)
    axes.grid(True, alpha=0.3)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"nightly-{curve.name}.png"
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path


def _number(x: float) -> str:
    return f"{x:.2%}" if x < 1 else f"{x:,.0f}"
