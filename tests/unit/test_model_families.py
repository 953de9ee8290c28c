"""The model families: each one searchable, loadable with the trusted types it lists, and honest about SQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.model_selection import ParameterGrid

from custlabel.errors import CustlabelError
from custlabel.training import bgnbd, model_families, recalibration
from custlabel.training.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from custlabel.training.model_search import TrainConfig


def _frame(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(NUMERIC_FEATURES))), columns=NUMERIC_FEATURES)
    frame[CATEGORICAL_FEATURES[0]] = rng.choice(["retail", "online"], rows)
    return frame, (frame[NUMERIC_FEATURES[0]] + rng.normal(size=rows) > 0.5).to_numpy().astype(int)


@pytest.fixture(scope="module", params=list(model_families.FAMILIES))
def fitted(request) -> tuple[model_families.ModelFamily, object]:
    family = model_families.FAMILIES[request.param]
    frame, y = _frame()
    # as the search would leave it: one point of its space
    pipeline = model_families.pipeline_for(family, 0, NUMERIC_FEATURES, CATEGORICAL_FEATURES, window_days=90)
    return family, pipeline.set_params(**ParameterGrid(family.space)[0]).fit(frame, y)


def test_training_searches_every_family_by_default() -> None:
    assert TrainConfig().candidates == tuple(model_families.FAMILIES)


def test_each_search_space_names_parameters_of_its_pipeline(fitted) -> None:
    family, _ = fitted
    pipeline = model_families.build_pipeline(family.make(0))
    for setting in ParameterGrid(family.space):
        pipeline.set_params(**setting)
    assert isinstance(pipeline.named_steps["model"], family.estimator_type)


def test_a_fitted_family_loads_with_the_trusted_types_alone(fitted) -> None:
    _, pipeline = fitted
    dumped = skops.io.dumps(pipeline)
    assert set(skops.io.get_untrusted_types(data=dumped)) <= set(model_families.trusted_types())
    loaded = skops.io.loads(dumped, trusted=model_families.trusted_types())
    frame, _ = _frame(20, seed=1)
    np.testing.assert_array_equal(loaded.predict_proba(frame), pipeline.predict_proba(frame))


def test_a_recalibrated_family_loads_with_the_trusted_types_and_keeps_its_sql_obstacle(fitted) -> None:
    _, pipeline = fitted
    wrapped = recalibration.RecalibratedClassifier(pipeline, slope=0.4, intercept=-0.2)
    dumped = skops.io.dumps(wrapped)
    assert recalibration.TRUSTED_TYPE in skops.io.get_untrusted_types(data=dumped)
    assert set(skops.io.get_untrusted_types(data=dumped)) <= set(model_families.trusted_types())
    loaded = skops.io.loads(dumped, trusted=model_families.trusted_types())
    frame, _ = _frame(20, seed=1)
    np.testing.assert_array_equal(loaded.predict_proba(frame), wrapped.predict_proba(frame))
    assert model_families.sql_obstacle(wrapped) == model_families.sql_obstacle(pipeline)
    assert model_families.uses_bgnbd(wrapped) == model_families.uses_bgnbd(pipeline)


def test_sql_obstacles_are_named_per_family(fitted) -> None:
    family, pipeline = fitted
    expected = {
        "logistic_regression": None,
        "random_forest": None,
        "hist_gradient_boosting": model_families.BGNBD_OBSTACLE,
    }
    assert model_families.sql_obstacle(pipeline) == expected[family.name]
    assert model_families.uses_bgnbd(pipeline) == family.bgnbd_features


def test_bgnbd_features_are_added_only_where_their_inputs_are_features() -> None:
    frame, y = _frame()
    frame["days_since_first_purchase"] = np.abs(frame["days_since_first_purchase"]) * 300
    frame["days_since_last_purchase"] = np.minimum(np.abs(frame["days_since_last_purchase"]) * 30, frame["days_since_first_purchase"])
    frame["repeat_purchases_count"] = np.rint(np.abs(frame["repeat_purchases_count"]) * 3)
    # a customer without a purchase has no BG/NBD summary, and the pipeline still fits and scores them
    frame.loc[frame.index[:5], bgnbd.INPUT_FEATURES] = np.nan
    family = model_families.get("hist_gradient_boosting")
    numeric = [c for c in NUMERIC_FEATURES if c != "repeat_purchases_count"]
    without = model_families.pipeline_for(family, 0, numeric, CATEGORICAL_FEATURES, window_days=90).fit(frame, y)
    assert not model_families.uses_bgnbd(without)
    assert model_families.sql_obstacle(without) == "orbital's SQL for histogram gradient boosting differs from Python (up to 0.14 seen)"
    with_it = model_families.pipeline_for(family, 0, NUMERIC_FEATURES, [], window_days=90).fit(frame, y)
    added = with_it.named_steps["features"].get_feature_names_out()
    assert {"bgnbd__bgnbd_p_alive", "bgnbd__bgnbd_expected_purchases"} <= set(added)
    assert not any(name.startswith("categorical__") for name in added)
    outputs = with_it.named_steps["features"].named_transformers_["bgnbd"].named_steps["bgnbd"].transform(frame[bgnbd.INPUT_FEATURES])
    assert np.isnan(outputs[:5]).all() and not np.isnan(outputs[5:]).any()
    assert with_it.predict_proba(frame).shape == (len(frame), 2)


def test_a_forest_too_big_for_postgres_is_not_translated() -> None:
    frame, y = _frame()
    big = model_families.build_pipeline(RandomForestClassifier(n_estimators=60, random_state=0)).fit(frame, y)
    assert "tree leaves: the SQL would pass Postgres's 1,664-column limit" in model_families.sql_obstacle(big)
    other = model_families.build_pipeline(ExtraTreesClassifier(n_estimators=60, random_state=0)).fit(frame, y)
    assert model_families.family_of(other.named_steps["model"]) is None
    assert "tree leaves" in model_families.sql_obstacle(other)


def test_an_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(CustlabelError, match="unknown model family 'svm': expected one of logistic_regression"):
        model_families.get("svm")
