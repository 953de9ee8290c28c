"""Sparse data: features the training rows cannot fill are reported and left out, and training stays quiet."""

from __future__ import annotations

import warnings
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from test_train_time_discipline import synthetic_training_set

from custlabel.config import DEFAULT_PROJECT_DIR
from custlabel.training import acceptance, model_families
from custlabel.training.model_search import (
    TrainConfig,
    buy_till_you_die,
    night_lines,
    score_test,
    select,
)
from custlabel.training.training_data import (
    Population,
    TrainingData,
    check_nights,
    split_frame,
    time_split,
    usable_features,
)

# What a purchase log without invoices, payments or channels leaves empty.
UNFILLED = ["overdue_share_365d", "avg_days_to_pay_on_time_365d", "online_share_365d"]


def purchase_only_rows():
    frame = synthetic_training_set(customers=300, months=10, seed=3)
    frame[UNFILLED] = np.nan
    frame["late_payment_rate_365d"] = 0.0
    # a first build: customer attributes before the first snapshot are 'unknown' on every training night
    frame["segment"] = "unknown"
    # recency, frequency and age as a purchase log has them
    rng = np.random.default_rng(5)
    frame["tenure_days"] = rng.uniform(30, 1500, len(frame)).round()
    frame["days_since_last_sale"] = np.minimum(frame["days_since_last_sale"].round(), frame["tenure_days"])
    frame["sales_count_365d"] = rng.poisson(3 * 30 / (30 + frame["days_since_last_sale"])) + 1.0
    frame["days_since_first_purchase"] = np.maximum(frame["tenure_days"] - rng.uniform(0, 30, len(frame)).round(), frame["days_since_last_sale"])
    frame["days_since_last_purchase"] = frame["days_since_last_sale"]
    frame["repeat_purchases_count"] = rng.poisson(frame["days_since_first_purchase"] / (60 + frame["days_since_last_sale"])).astype(float)
    return frame


def test_features_null_or_constant_on_the_training_rows_are_left_out_with_the_reason() -> None:
    features = usable_features(purchase_only_rows())
    assert set(features.left_out) == {*UNFILLED, "late_payment_rate_365d", "segment"}
    assert features.left_out["online_share_365d"] == "null on every training row"
    assert features.left_out["late_payment_rate_365d"] == "one value (0) on every training row"
    assert features.left_out["segment"] == "one value ('unknown') on every training row"
    assert features.categorical == ()
    assert not set(features.left_out) & set(features.columns)
    assert "feature segment left out of the model: one value ('unknown') on every training row" in features.lines()


def test_training_on_sparse_rows_is_quiet_and_the_model_reads_only_the_kept_features() -> None:
    frame = purchase_only_rows()
    plan = time_split(frame.groupby("as_of_date", as_index=False)["window_end"].max())
    train, validation, test = split_frame(frame, plan)
    config = TrainConfig(search_iterations=1, max_folds=2, n_jobs=1)
    criteria = acceptance.read_file(DEFAULT_PROJECT_DIR / "acceptance.yml")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        selection = select(train, validation, criteria, config, plan.gap_days)
        _, scores = score_test(selection, test)
        baseline, _ = buy_till_you_die(train, scores, test, selection.chosen.validation_point.threshold, plan.gap_days)
    kept = selection.features.columns
    for candidate in selection.candidates:
        assert list(candidate.pipeline.feature_names_in_) == kept
    # the family that takes BG/NBD's outputs has them; its SQL is not attempted
    boosting = next(c for c in selection.candidates if c.name == "hist_gradient_boosting")
    assert model_families.sql_obstacle(boosting.pipeline) == model_families.BGNBD_OBSTACLE
    assert baseline is not None and 0 < baseline.average_precision <= 1


def test_truncated_train_nights_are_weighted_when_the_history_is_too_short_to_leave_them_out() -> None:
    frame = purchase_only_rows()
    plan = time_split(frame.groupby("as_of_date", as_index=False)["window_end"].max())
    train, validation, _ = split_frame(frame, plan)
    weights = np.where(train["as_of_date"] == plan.train_dates[0], 0.25, 1.0)
    config = replace(TrainConfig(search_iterations=1, max_folds=2, n_jobs=1), candidates=("logistic_regression",))
    criteria = acceptance.read_file(DEFAULT_PROJECT_DIR / "acceptance.yml")
    weighted = select(train, validation, criteria, config, plan.gap_days, weights).chosen.pipeline
    plain = select(train, validation, criteria, config, plan.gap_days).chosen.pipeline
    assert not np.allclose(weighted.named_steps["model"].coef_, plain.named_steps["model"].coef_)


def _summary(months: int) -> pd.DataFrame:
    dates = [date(2025 + m // 12, 1 + m % 12, 1) for m in range(months)]
    return pd.DataFrame({
        "as_of_date": dates,
        "window_end": [d + timedelta(days=90) for d in dates],
        "rows": 1000,
        "bad": [100 + 20 * m for m in range(months)],
        "active": [950 - 40 * m for m in range(months)],
    })


def test_train_nights_with_a_truncated_lookback_are_left_out_when_the_rest_can_train() -> None:
    summary = _summary(16)
    plan = time_split(summary)
    # sales start 2024-03-01: nights before 2025-03-01 see less than a year of them
    kept, check = check_nights(plan, summary, date(2024, 3, 1), None)
    assert check.left_out == (date(2025, 1, 1), date(2025, 2, 1))
    assert kept.train_dates == tuple(d for d in plan.train_dates if d >= date(2025, 3, 1))
    assert (kept.validation_dates, kept.test_date) == (plan.validation_dates, plan.test_date)
    assert check.weights == {}
    first = check.populations[0]
    assert (first.truncated, first.history_days, first.bad_rate, first.active_share) == (True, 306, 0.1, 0.95)
    assert check.tags()["truncated_nights"] == "2025-01-01,2025-02-01"
    assert "left out" in check.policy


def test_truncated_train_nights_are_kept_and_weighted_when_leaving_them_out_breaks_the_split() -> None:
    summary = _summary(13)
    plan = time_split(summary)
    tonight = Population(date(2026, 6, 1), 800, None, 0.4, 365)
    kept, check = check_nights(plan, summary, date(2024, 8, 1), tonight)
    assert kept == plan and check.left_out == ()
    assert check.weights[date(2025, 1, 1)] == pytest.approx(153 / 365)
    assert set(check.weights) == set(plan.train_dates)
    assert "weighted by the share" in check.policy
    rows = pd.DataFrame({"as_of_date": [*plan.train_dates, plan.validation_dates[0]]})
    data = TrainingData(plan, rows, None, None, summary, "", check)
    assert data.train_weights().tolist() == pytest.approx([*(check.weights[d] for d in plan.train_dates), 1.0])
    assert data.train_weights()[-2] == pytest.approx(334 / 365)


def test_the_report_shows_each_night_beside_tonight() -> None:
    summary = _summary(13)
    plan = time_split(summary)
    tonight = Population(date(2026, 6, 1), 800, None, 0.4, 365)
    _, check = check_nights(plan, summary, date(2024, 8, 1), tonight)
    data = TrainingData(plan, pd.DataFrame(), None, None, summary, "", check)
    lines = night_lines(data)
    assert "  train      2025-01-01:     1,000 rows, bad rate 0.100, active 95%, lookback 153 of 365 days (truncated)" in lines
    assert "  test       2026-01-01:     1,000 rows, bad rate 0.340, active 47%" in lines
    assert "  tonight    2026-06-01:       800 rows, bad rate unknown, active 40%" in lines
