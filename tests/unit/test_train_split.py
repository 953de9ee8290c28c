"""The time-ordered split and folds: older dates train, newer validate, the newest tests."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from custlabel.train import SplitPlan, TrainingDataError, split_frame, time_folds, time_split


def _summary(months: int, window_days: int = 90) -> pd.DataFrame:
    dates = [date(2025, 1 + m, 1) if m < 12 else date(2026, m - 11, 1) for m in range(months)]
    return pd.DataFrame({"as_of_date": dates, "window_end": [d + timedelta(days=window_days) for d in dates]})


def test_embargo_keeps_each_period_labels_matured_before_the_next_begins() -> None:
    plan = time_split(_summary(13))
    assert plan.embargo
    assert plan.test_date == date(2026, 1, 1)
    # validation labels (window to 2025-12-29) are known by the test date
    assert plan.validation_dates == (date(2025, 10, 1),)
    # train labels are known by the validation date
    assert plan.train_dates == tuple(date(2025, m, 1) for m in range(1, 8))
    assert max(plan.train_dates) + timedelta(days=90) <= plan.validation_dates[0]


def test_short_history_falls_back_to_adjacent_periods() -> None:
    plan = time_split(_summary(6))
    assert not plan.embargo
    assert plan.train_dates == tuple(date(2025, m, 1) for m in range(1, 5))
    assert plan.validation_dates == (date(2025, 5, 1),)
    assert plan.test_date == date(2025, 6, 1)


def test_embargo_required_but_impossible_is_an_error() -> None:
    with pytest.raises(TrainingDataError, match="too short for an embargo"):
        time_split(_summary(6), embargo=True)


def test_too_few_dates_is_an_error() -> None:
    with pytest.raises(
        TrainingDataError, match="has 3 matured as_of_dates; a time-ordered split needs at least 4"
    ):
        time_split(_summary(3))


def test_embargo_off_uses_the_adjacent_dates() -> None:
    plan = time_split(_summary(13), validation_dates=2, embargo=False)
    assert plan.validation_dates == (date(2025, 11, 1), date(2025, 12, 1))
    assert plan.train_dates[-1] == date(2025, 10, 1)


def test_folds_fit_on_earlier_dates_and_score_the_next() -> None:
    dates = pd.Series([date(2025, m, 1) for m in (1, 1, 2, 2, 3, 3, 4, 4)])
    folds = time_folds(dates, max_folds=2)
    assert len(folds) == 2
    for fit, held_out in folds:
        assert dates.iloc[fit].max() < dates.iloc[held_out].min()
        assert dates.iloc[held_out].nunique() == 1
    assert list(folds[-1][0]) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(TrainingDataError, match="at least two"):
        time_folds(pd.Series([date(2025, 1, 1)] * 3), max_folds=2)


def test_split_frame_puts_every_row_in_its_period() -> None:
    plan = SplitPlan(
        (date(2025, 1, 1), date(2025, 2, 1)), (date(2025, 3, 1),), date(2025, 4, 1), embargo=False
    )
    frame = pd.DataFrame({"as_of_date": [date(2025, m, 1) for m in (1, 2, 3, 4, 4)], "x": np.arange(5)})
    train, validation, test = split_frame(frame, plan)
    assert list(train["x"]) == [0, 1] and list(validation["x"]) == [2] and list(test["x"]) == [3, 4]
