"""The time-ordered split and folds: one outcome window between fit and judged dates, or a clear error."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from custlabel.training.model_search import time_folds
from custlabel.training.training_data import (
    SplitPlan,
    TrainingDataError,
    split_frame,
    time_split,
)


def _summary(months: int, window_days: int = 90) -> pd.DataFrame:
    dates = [date(2025 + m // 12, 1 + m % 12, 1) for m in range(months)]
    return pd.DataFrame({"as_of_date": dates, "window_end": [d + timedelta(days=window_days) for d in dates]})


def test_each_period_labels_matured_before_the_next_begins() -> None:
    plan = time_split(_summary(13))
    assert plan.gap_days == 90
    assert plan.test_date == date(2026, 1, 1)
    # validation labels (window to 2025-12-30) are known by the test date
    assert plan.validation_dates == (date(2025, 10, 1),)
    # train labels are known by the validation date
    assert plan.train_dates == tuple(date(2025, m, 1) for m in range(1, 8))
    assert max(plan.train_dates) + timedelta(days=90) <= plan.validation_dates[0]


def test_a_history_too_short_for_the_gap_is_an_error_saying_how_much_is_needed() -> None:
    # nine monthly dates: a gap between train and validation and test fits, but none for the folds
    with pytest.raises(TrainingDataError) as raised:
        time_split(_summary(9))
    message = str(raised.value)
    assert "training_set has 9 matured as_of_dates (2025-01-01..2025-09-01, 243 days)" in message
    assert "one outcome window (90 days)" in message
    assert "spanning at least 270 days (about 10 as_of_dates 31 days apart)" in message
    assert "about 12 months of history" in message
    time_split(_summary(10))


@pytest.mark.parametrize("months", [0, 1, 3, 6])
def test_short_histories_never_fall_back_to_adjacent_dates(months: int) -> None:
    with pytest.raises(TrainingDataError, match="a time-ordered split keeps one outcome window"):
        time_split(_summary(months))


def test_more_validation_dates_need_more_history() -> None:
    plan = time_split(_summary(13), validation_dates=2)
    assert plan.validation_dates == (date(2025, 9, 1), date(2025, 10, 1))
    assert max(plan.train_dates) + timedelta(days=90) <= plan.validation_dates[0]
    with pytest.raises(TrainingDataError, match="spanning at least 301 days"):
        time_split(_summary(10), validation_dates=2)


def test_folds_fit_only_on_dates_whose_window_ended_before_the_held_out_date() -> None:
    months = (1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6)
    dates = pd.Series([date(2025, m, 1) for m in months])
    folds = time_folds(dates, gap_days=90, max_folds=2)
    assert [sorted(set(dates.iloc[held_out])) for _, held_out in folds] == [[date(2025, 5, 1)], [date(2025, 6, 1)]]
    for fit, held_out in folds:
        assert dates.iloc[fit].max() + timedelta(days=90) <= dates.iloc[held_out].min()
    assert list(folds[-1][0]) == [0, 1, 2, 3, 4, 5]


def test_folds_without_a_gap_in_the_train_period_are_an_error() -> None:
    dates = pd.Series([date(2025, m, 1) for m in (1, 2, 3)])
    with pytest.raises(TrainingDataError, match=r"at least one outcome window \(90 days\) apart"):
        time_folds(dates, gap_days=90, max_folds=2)


def test_split_frame_puts_every_row_in_its_period() -> None:
    plan = SplitPlan((date(2025, 1, 1), date(2025, 2, 1)), (date(2025, 3, 1),), date(2025, 4, 1), gap_days=0)
    frame = pd.DataFrame({"as_of_date": [date(2025, m, 1) for m in (1, 2, 3, 4, 4)], "x": np.arange(5)})
    train, validation, test = split_frame(frame, plan)
    assert list(train["x"]) == [0, 1] and list(validation["x"]) == [2] and list(test["x"]) == [3, 4]
