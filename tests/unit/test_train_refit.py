"""Refit after selection: the chosen settings learn again from every matured night, checked against the held-out version."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from test_train_time_discipline import synthetic_training_set

from custlabel.config import DEFAULT_PROJECT_DIR
from custlabel.release import model_card
from custlabel.training import acceptance, calibration, model_search, recalibration
from custlabel.training.features import LABEL_COLUMN
from custlabel.training.training_data import (
    NightCheck,
    Population,
    TrainingData,
    split_frame,
    time_split,
)

CONFIG = model_search.TrainConfig(search_iterations=1, max_folds=2, n_jobs=1, candidates=("logistic_regression",), train_rows_per_date=1500)


def training_data(frame: pd.DataFrame, nights: NightCheck | None = None) -> TrainingData:
    summary = frame.groupby("as_of_date", as_index=False)["window_end"].max()
    plan = time_split(summary)
    train_rows, validation, test = split_frame(frame, plan)
    return TrainingData(plan, train_rows, validation, test, summary, "all rows", nights)


@pytest.fixture(scope="module")
def data() -> TrainingData:
    frame = synthetic_training_set(customers=3000, months=10, seed=4)
    # the hidden risk enters the odds linearly, so a logistic regression is calibrated
    frame["days_since_last_sale"] = np.log(frame["days_since_last_sale"])
    return training_data(frame)


@pytest.fixture(scope="module")
def result(data) -> model_search.TrainResult:
    return model_search.train(data, acceptance.read_file(DEFAULT_PROJECT_DIR / "acceptance.yml"), CONFIG)


def test_the_refit_learns_from_every_matured_night_test_night_included(data, result) -> None:
    refit, plan = result.refit, data.plan
    assert refit is not None
    assert refit.nights == (*plan.train_dates, *plan.validation_dates, plan.test_date)
    assert set(refit.nights) - set(plan.train_dates) == {*plan.validation_dates, plan.test_date}
    # no night weighs more than a train night: validation and test are cut to the train cap
    assert refit.rows == len(data.train) + 1500 * (len(plan.validation_dates) + 1)
    assert result.learned_from() == {"held-out version": plan.train_dates, "refit": refit.nights}


def test_the_refit_keeps_the_chosen_settings_and_agrees_with_the_held_out_version(result) -> None:
    chosen, refit = result.selection.chosen.pipeline, result.refit.pipeline
    assert refit is not chosen
    assert refit.named_steps["model"].C == chosen.named_steps["model"].C
    assert refit.named_steps["model"].class_weight == chosen.named_steps["model"].class_weight
    assert list(refit.feature_names_in_) == result.feature_columns
    scores = result.test_scores
    assert scores["refit_score"].to_numpy() == pytest.approx(
        refit.predict_proba(result.data.test[result.feature_columns])[:, 1]
    )
    # the same settings on more nights of a stationary world rank the test night alike
    assert result.refit.spearman > 0.95
    assert result.refit.label_agreement > 0.9
    held_out = scores["score"] >= result.threshold
    assert result.refit.label_agreement == pytest.approx(float(((scores["refit_score"] >= result.refit.threshold) == held_out).mean()))


def test_the_refit_labels_when_calibrated_and_the_held_out_figures_stay(result) -> None:
    assert result.refit.calibration.expected_calibration_error <= 0.03, result.refit.note
    assert result.labels_with_refit
    assert result.labelling_pipeline is result.refit.pipeline
    assert result.labelling_threshold == result.refit.threshold
    # the test figures are still the held-out version's, on its own scores
    assert result.test_metrics.rows == len(result.data.test)
    held_out = result.selection.chosen.pipeline.predict_proba(result.data.test[result.feature_columns])[:, 1]
    assert result.test_scores["score"].to_numpy() == pytest.approx(held_out)
    tags = result.refit.tags()
    assert tags["refit_labels"] == "true"
    assert tags["refit_nights"].endswith(str(result.data.plan.test_date))
    assert {"refit_test_spearman", "refit_test_label_agreement", "refit_calibration_expected_calibration_error"} <= set(tags)
    assert result.refit.note in model_search.summary_lines(result)


def test_a_refit_calibrated_worse_than_the_tolerance_and_the_held_out_version_does_not_label(result) -> None:
    worse = replace(result.refit.calibration, expected_calibration_error=0.05, needs_recalibration=True)
    refit = replace(result.refit, calibration=worse, held_out_calibration_error=0.04)
    assert not refit.labels
    assert "the held-out version labels: the refit's calibration error 0.0500 is beyond both the tolerance 0.03" in refit.note
    assert refit.tags()["refit_labels"] == "false"
    held_out = replace(result, refit=refit)
    assert held_out.labelling_pipeline is result.selection.chosen.pipeline
    assert held_out.labelling_threshold == result.threshold
    # no worse than the held-out version on that night: the refit labels
    assert replace(refit, held_out_calibration_error=0.05).labels


def test_the_refit_is_checked_on_the_newest_night_by_the_same_settings_fitted_without_it() -> None:
    # raw, the hidden risk enters the odds through a logarithm: the held-out choice is recalibrated
    data = training_data(synthetic_training_set(customers=3000, months=10, seed=4))
    result = model_search.train(data, acceptance.read_file(DEFAULT_PROJECT_DIR / "acceptance.yml"), CONFIG)
    assert result.calibration.recalibrated, result.calibration.note
    refit, test, chosen = result.refit, data.test, result.selection.chosen.pipeline
    rows, _ = data.refit_rows(CONFIG.train_rows_per_date)
    earlier = rows[rows["as_of_date"] != data.plan.test_date]
    without = clone(recalibration.uncalibrated(chosen)).fit(earlier[result.feature_columns], earlier[LABEL_COLUMN])
    raw = without.predict_proba(test[result.feature_columns])[:, 1]
    y = test[LABEL_COLUMN].to_numpy()
    errors = {
        "as fitted": calibration.check(y, raw).expected_calibration_error,
        "through the held-out version's Platt map": calibration.check(y, chosen.calibrate(raw)).expected_calibration_error,
    }
    assert refit.scale == min(errors, key=errors.get)
    assert refit.calibration.expected_calibration_error == pytest.approx(min(errors.values()))
    assert f"fitted without it, {min(errors.values()):.4f} {refit.scale}" in refit.note
    # the registered refit learned from the newest night too, and either scale labels alike
    assert data.plan.test_date in refit.nights
    fitted = recalibration.uncalibrated(refit.pipeline).predict_proba(test[result.feature_columns])[:, 1]
    thresholds = result.calibration.threshold_as_trained, result.calibration.threshold
    assert (fitted >= thresholds[0]).tolist() == (chosen.calibrate(fitted) >= thresholds[1]).tolist()


def test_no_refit_when_configured_off(data) -> None:
    result = model_search.train(data, acceptance.read_file(DEFAULT_PROJECT_DIR / "acceptance.yml"), replace(CONFIG, refit=False))
    assert result.refit is None and "refit_score" not in result.test_scores
    assert result.labelling_pipeline is result.selection.chosen.pipeline


def test_truncated_nights_weigh_their_share_of_the_lookback_in_the_refit(data) -> None:
    plan = data.plan
    first, test_night = plan.train_dates[0], plan.test_date
    populations = tuple(
        Population(night, 3000, 0.3, 0.5, 91 if night == first else 365)
        for night in (*plan.train_dates, *plan.validation_dates, test_night)
    )
    weighted = replace(data, nights=NightCheck(populations, None, date(2024, 10, 1), weights={first: 91 / 365}))
    rows, weights = weighted.refit_rows(1500)
    assert weights is not None and len(weights) == len(rows)
    assert set(weights[(rows["as_of_date"] == first).to_numpy()]) == {91 / 365}
    assert set(weights[(rows["as_of_date"] != first).to_numpy()]) == {1.0}
    assert rows.groupby("as_of_date")[LABEL_COLUMN].size().max() <= 3000


def test_the_model_card_says_which_nights_each_version_learned_from(result) -> None:
    card = model_card.render("m", "3", result, {"best_params": "{}"})
    plan = result.data.plan
    section = card.split("## Nights each version learned from")[1].split("##")[0]
    assert f"- held-out version: {', '.join(map(str, plan.train_dates))}" in section
    assert f"- refit: {', '.join(map(str, result.refit.nights))}" in section
    assert "The registered model, the one that labels, is the refit." in section
