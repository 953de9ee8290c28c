"""`custlabel bench --target spark`: the options it takes and refuses, and the curves it draws from its nights."""

from __future__ import annotations

import pytest

from custlabel.cli import main
from custlabel.devtools.benchmarks.results import Record
from custlabel.devtools.benchmarks.spark_curves import NIGHT_SECONDS, SparkPlan, curves
from custlabel.errors import CustlabelError


def night(customers: int, cores: int, seconds: float) -> Record:
    return Record("spark_night", customers, 540, seconds={"night": seconds}, figures={"cores": cores})


def test_the_plan_takes_sizes_smallest_first_and_cores_in_the_order_given_with_1_2_4_by_default() -> None:
    assert SparkPlan.from_options([100_000, 10_000, 10_000], [2, 1, 4, 1], 540, []) == SparkPlan([10_000, 100_000], [2, 1, 4], 540)
    assert SparkPlan.from_options([10_000], None, 180, []).cores == [1, 2, 4]


def test_the_plan_needs_sizes_and_refuses_the_postgres_options() -> None:
    with pytest.raises(CustlabelError, match="give --sizes"):
        SparkPlan.from_options(None, [1, 2], 540, [])
    with pytest.raises(CustlabelError, match="--sections, --history-days measure Postgres"):
        SparkPlan.from_options([10_000], None, 540, ["--sections", "--history-days"])


@pytest.mark.parametrize(("argv", "message"), [
    (["bench", "--sizes", "1000", "--spark-cores", "1,2"], "--spark-cores sets the cores of a local Spark session"),
    (["bench", "--target", "spark", "--sizes", "1000", "--changed-scales", "2"], "--changed-scales measure Postgres"),
    (["bench", "--target", "spark"], "give --sizes"),
])
def test_the_cli_refuses_before_measuring(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_cli_refuses_cores_that_are_not_numbers_above_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--target", "spark", "--sizes", "1000", "--spark-cores", "0,2"])
    assert "give comma-separated numbers above 0" in capsys.readouterr().err


def test_a_curve_against_cores_per_size_and_against_customers_per_core_count() -> None:
    plan = SparkPlan([10_000, 100_000], [1, 2], 540)
    records = [
        Record("spark_world", 10_000, 540, seconds={"full_build": 300.0}),
        night(10_000, 2, 60.0), night(10_000, 1, 80.0), night(100_000, 1, 400.0), night(100_000, 2, 250.0),
    ]
    by_cores, big_by_cores, on_one, on_two = curves(records, plan)
    assert by_cores.points == [(1, 80.0), (2, 60.0)] and big_by_cores.points == [(1, 400.0), (2, 250.0)]
    assert on_one.points == [(10_000, 80.0), (100_000, 400.0)] and on_two.points == [(10_000, 60.0), (100_000, 250.0)]
    assert by_cores.as_dict()["y"] == NIGHT_SECONDS
    assert [curve.name for curve in curves(records[:3], SparkPlan([10_000], [1, 2], 540))] == ["spark-cores-10000"]
