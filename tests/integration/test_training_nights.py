"""The history's as-of dates: the first of each month by default, each Monday with training_nights_every: week."""

from __future__ import annotations

from datetime import date

import pytest

from custlabel.warehouse import db, dbt_runner

pytestmark = pytest.mark.integration

TONIGHT = date(2026, 6, 30)


def _nights(settings, every: str) -> list[date]:
    dbt_runner.run(settings, ["build", "--select", "int_as_of_dates"], target="prod", as_of_date=TONIGHT,
            extra_vars={"training_nights_every": every})
    frame = db.read_frame(settings, "select as_of_date from analytics.int_as_of_dates order by as_of_date", None)
    return [value for value in frame["as_of_date"]]


def test_monthly_and_weekly_nights_span_the_same_history(make_database) -> None:
    settings = make_database("training_nights")
    monthly = _nights(settings, "month")
    weekly = _nights(settings, "week")
    assert monthly[-1] == weekly[-1] == TONIGHT
    assert all(night.day == 1 for night in monthly[:-1]) and monthly[0] == date(2025, 3, 1)
    assert all(night.weekday() == 0 for night in weekly[:-1]) and weekly[0] == date(2025, 3, 24)
    assert {(later - earlier).days for earlier, later in zip(weekly[:-2], weekly[1:-1], strict=True)} == {7}
    # about four nights a month where there was one
    assert len(weekly) - 1 == 67 and len(monthly) - 1 == 16
