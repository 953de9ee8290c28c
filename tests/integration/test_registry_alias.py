"""The registry aliases are how other code finds a model: set, read back, loaded, scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from custlabel.config import Settings
from custlabel.release import registration
from custlabel.training import model_search, registry, rule_baseline, training_data
from custlabel.training.features import MODEL_FEATURES
from custlabel.warehouse import db
from helpers.stores import with_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAST = model_search.TrainConfig(search_iterations=1, max_folds=2, n_jobs=1, candidates=("logistic_regression",))


@pytest.fixture(scope="module")
def registered(built_warehouse: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = with_store(built_warehouse, tmp_path_factory.mktemp("registry"))
    registration.train_and_register(settings, FAST)
    return settings


def test_no_model_registered_is_a_clear_error(built_warehouse: Settings, tmp_path: Path) -> None:
    settings = with_store(built_warehouse, tmp_path)
    with pytest.raises(
        registry.NoModelRegisteredError, match="no model is registered under 'customer-labels' yet"
    ):
        registry.load_alias(settings, "champion")
    assert registry.load_fallback(settings, rule_baseline.RULE) is None
    assert registry.alias_versions(settings) == {}


def test_unset_alias_is_none(registered: Settings) -> None:
    assert registry.load_alias(registered, "champion") is None


def test_challenger_loads_and_scores_tonights_customers(registered: Settings) -> None:
    model = registry.load_alias(registered, "challenger")
    assert model is not None
    assert (model.name, model.version, model.alias) == ("customer-labels", "1", "challenger")
    # On a first build the training nights take the earliest known segment: a feature like the others.
    assert model.feature_columns == list(MODEL_FEATURES)
    assert 0 < model.threshold < 1
    tonight = db.read_frame(
        registered, f"select * from {registered.schema}.customer_features_current limit 500"
    )
    scores = model.pipeline.predict_proba(tonight[model.feature_columns])[:, 1]
    assert scores.shape == (len(tonight),)
    assert np.all((scores >= 0) & (scores <= 1))


def test_aliases_move_and_read_back(registered: Settings) -> None:
    registration.train_and_register(registered, FAST)
    assert registry.alias_versions(registered) == {"challenger": "2"}
    registry.set_alias(registered, "champion", "1")
    assert registry.alias_versions(registered) == {"challenger": "2", "champion": "1"}
    champion = registry.load_alias(registered, "champion")
    assert champion is not None and champion.version == "1"


def test_pyfunc_signature_enforces_the_feature_schema(registered: Settings) -> None:
    import mlflow

    model = mlflow.pyfunc.load_model(f"models:/{registered.model_name}@challenger")
    kept = list(MODEL_FEATURES)
    assert model.metadata.get_input_schema().input_names() == kept
    tonight = db.read_frame(
        registered, f"select * from {registered.schema}.customer_features_current limit 50"
    )
    probabilities = model.predict(training_data.normalize(tonight)[kept])
    assert np.asarray(probabilities).shape == (len(tonight), 2)
    with pytest.raises(Exception, match="tenure_days"):
        model.predict(tonight[kept].drop(columns="tenure_days"))
