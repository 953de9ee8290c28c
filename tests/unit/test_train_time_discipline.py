"""Time discipline: nothing from the validation or test periods is fitted, and sensitive attributes are not features."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from custlabel.config import DEFAULT_PROJECT_DIR
from custlabel.training import acceptance
from custlabel.training.evaluate import EvaluationError
from custlabel.training.features import (
    LABEL_COLUMN,
    MODEL_FEATURES,
    NUMERIC_FEATURES,
    SENSITIVE_ATTRIBUTES,
)
from custlabel.training.model_families import build_pipeline
from custlabel.training.model_search import TrainConfig, score_test, select
from custlabel.training.training_data import normalize, split_frame, time_split

CONFIG = TrainConfig(search_iterations=2, max_folds=2, n_jobs=1)


def synthetic_training_set(customers: int = 300, months: int = 10, seed: int = 0) -> pd.DataFrame:
    """A small training_set: features driven by a hidden risk that also drives is_bad."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=customers)
    frames = []
    for month in range(months):
        as_of = date(2025, 1, 1) + timedelta(days=31 * month)
        drift = risk + rng.normal(scale=0.5, size=customers)
        frame = pd.DataFrame(rng.normal(size=(customers, len(NUMERIC_FEATURES))), columns=NUMERIC_FEATURES)
        frame["days_since_last_sale"] = np.exp(3 + drift)
        frame["overdue_invoices_count"] = rng.poisson(np.exp(drift - 1))
        frame.loc[rng.random(customers) < 0.05, "avg_days_to_pay_365d"] = np.nan
        frame["segment"] = rng.choice(["consumer", "small_business", "enterprise"], customers)
        frame["customer_id"] = [f"C{i:05d}" for i in range(customers)]
        frame["as_of_date"] = as_of
        frame["window_end"] = as_of + timedelta(days=90)
        frame[LABEL_COLUMN] = (rng.random(customers) < 1 / (1 + np.exp(-1.5 * drift))).astype(int)
        frame["country"] = rng.choice(["DE", "FR"], customers)
        frame["gender"] = rng.choice(["f", "m"], customers)
        frame["age_band"] = rng.choice(["18-34", "35-54", "55+"], customers)
        frames.append(frame)
    return normalize(pd.concat(frames, ignore_index=True))


def _criteria() -> acceptance.AcceptanceCriteria:
    return acceptance.read_file(DEFAULT_PROJECT_DIR / "acceptance.yml")


def _train(frame: pd.DataFrame):
    summary = frame.groupby("as_of_date", as_index=False)["window_end"].max()
    plan = time_split(summary)
    train, validation, test = split_frame(frame, plan)
    selection = select(train, validation, _criteria(), CONFIG, plan.gap_days)
    return plan, selection, score_test(selection, test)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_training_set()


@pytest.fixture(scope="module")
def trained(frame: pd.DataFrame):
    return _train(frame)


def test_scrambling_the_test_labels_leaves_training_unchanged(frame: pd.DataFrame, trained) -> None:
    plan, selection, (metrics, scored) = trained
    scrambled = frame.copy()
    in_test = scrambled["as_of_date"] == plan.test_date
    rng = np.random.default_rng(42)
    scrambled.loc[in_test, LABEL_COLUMN] = (
        rng.permutation(scrambled.loc[in_test, LABEL_COLUMN].to_numpy()) ^ 1
    )
    plan_2, selection_2, (metrics_2, scored_2) = _train(scrambled)

    assert plan_2 == plan
    assert selection_2.chosen.name == selection.chosen.name
    for first, second in zip(selection.candidates, selection_2.candidates, strict=True):
        assert first.best_params == second.best_params
        assert first.cv_score == second.cv_score
        assert first.validation_point == second.validation_point
    np.testing.assert_array_equal(scored["score"].to_numpy(), scored_2["score"].to_numpy())
    # the test figures are the only thing that sees the test labels
    assert metrics_2 != metrics


def test_scrambling_validation_labels_leaves_the_fitted_searches_unchanged(
    frame: pd.DataFrame, trained
) -> None:
    plan, selection, _ = trained
    scrambled = frame.copy()
    in_validation = scrambled["as_of_date"].isin(plan.validation_dates)
    scrambled.loc[in_validation, LABEL_COLUMN] ^= 1
    _, selection_2, _ = _train(scrambled)
    for first, second in zip(selection.candidates, selection_2.candidates, strict=True):
        assert first.best_params == second.best_params and first.cv_score == second.cv_score


def test_sensitive_attributes_are_never_features(frame: pd.DataFrame) -> None:
    assert not set(SENSITIVE_ATTRIBUTES) & set(MODEL_FEATURES)
    pipeline = build_pipeline(LogisticRegression(max_iter=500)).fit(frame, frame[LABEL_COLUMN])
    names = pipeline[:-1].get_feature_names_out()
    assert not [name for name in names if any(attribute in name for attribute in SENSITIVE_ATTRIBUTES)]
    other = frame.assign(country="XX", gender="x", age_band="none")
    np.testing.assert_array_equal(pipeline.predict_proba(frame)[:, 1], pipeline.predict_proba(other)[:, 1])


def test_one_class_train_period_is_refused(frame: pd.DataFrame) -> None:
    train = frame[frame["as_of_date"] < date(2025, 4, 1)].assign(**{LABEL_COLUMN: 0})
    validation = frame[frame["as_of_date"] == date(2025, 4, 1)]
    with pytest.raises(EvaluationError, match="train period has only one class"):
        select(train, validation, _criteria(), replace(CONFIG, candidates=("logistic_regression",)), 90)
