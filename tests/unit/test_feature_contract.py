"""One feature list, read from the features' YAML: the dbt contracts, the reasons and the benchmark all follow it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from custlabel.config import DEFAULT_PROJECT_DIR
from custlabel.devtools.benchmarks import scoring as scoring_benchmark
from custlabel.scoring import reasons
from custlabel.training import features

MARTS = DEFAULT_PROJECT_DIR / "models" / "marts"


def _contract(folder: str, model: str) -> dict[str, str]:
    """The typed columns a dbt model's YAML declares, in order."""
    models = yaml.safe_load((MARTS / folder / f"_{folder}__models.yml").read_text())["models"]
    (entry,) = [m for m in models if m["name"] == model]
    assert entry["config"]["contract"]["enforced"] is True
    return {column["name"]: column["data_type"] for column in entry["columns"]}


def test_the_feature_list_is_the_scored_marts_contract_in_order() -> None:
    assert list(_contract("features", "customer_features_current").items()) == list(features.FEATURE_MART_COLUMNS.items())


def test_the_feature_history_declares_the_feature_list_in_order() -> None:
    assert list(_contract("features", "customer_features").items()) == list(features.FEATURE_MART_COLUMNS.items())


def test_the_training_set_declares_the_features_and_the_outcome_in_order() -> None:
    declared = list(_contract("labels", "training_set").items())
    assert declared == [*features.FEATURE_MART_COLUMNS.items(), *features.OUTCOME_COLUMNS.items()]


def test_model_features_are_the_numeric_and_categorical_ones_never_a_sensitive_attribute_or_provenance() -> None:
    assert features.MODEL_FEATURES == features.NUMERIC_FEATURES + features.CATEGORICAL_FEATURES
    assert not set(features.MODEL_FEATURES) & set(features.SENSITIVE_ATTRIBUTES + features.PROVENANCE_COLUMNS)
    assert features.SENSITIVE_ATTRIBUTES == ["country", "gender", "age_band"]


def test_the_reasons_and_the_benchmark_read_each_features_yaml_entry() -> None:
    assert set(reasons.PHRASES) == set(features.NUMERIC_FEATURES)
    assert reasons.ABSOLUTE_WORDS["tenure_days"].below[0] == (90.0, "new customer")
    assert list(scoring_benchmark.CATEGORIES) == features.CATEGORICAL_FEATURES + features.SENSITIVE_ATTRIBUTES
    assert set(scoring_benchmark.DRAWS) == set(features.NUMERIC_FEATURES)


def _project_with(tmp_path: Path, edit) -> Path:
    """A copy of the features' YAML with one column's entry edited."""
    target = tmp_path / features.FEATURES_FILE
    target.parent.mkdir(parents=True)
    document = yaml.safe_load((DEFAULT_PROJECT_DIR / features.FEATURES_FILE).read_text())
    (mart,) = [model for model in document["models"] if model["name"] == features.SCORED_MART]
    columns = {column["name"]: column for column in mart["columns"]}
    edit(columns)
    mart["columns"] = list(columns.values())
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return tmp_path


GIFT_CARDS = {
    "name": "gift_cards_90d",
    "data_type": "double precision",
    "config": {"meta": {
        "feature": "numeric",
        "reason": {"high": "many gift cards", "low": "few gift cards", "unknown": "no gift card data"},
        "synthetic": {"draw": "exponential", "scale": 5},
    }},
}


def test_a_new_feature_is_its_yaml_entry(tmp_path: Path) -> None:
    project = _project_with(tmp_path, lambda columns: columns.update(gift_cards_90d=GIFT_CARDS))

    read = {feature.name: feature for feature in features.read_features(project)}

    assert read["gift_cards_90d"].kind == "numeric"
    assert read["gift_cards_90d"].reason == ("many gift cards", "few gift cards", "no gift card data")
    assert list(read)[-1] == "gift_cards_90d"


@pytest.mark.parametrize(("column", "change", "message"), [
    ("revenue_30d", lambda c: c["config"]["meta"].pop("reason"), "revenue_30d needs config.meta.reason"),
    ("revenue_30d", lambda c: c["config"]["meta"].update(feature="numerical"), "revenue_30d needs config.meta.feature"),
    ("revenue_30d", lambda c: c.update(data_type="text"), "numeric column revenue_30d must have data_type"),
    ("segment", lambda c: c["config"]["meta"].pop("synthetic"), "segment needs config.meta.synthetic.values"),
    ("tenure_days", lambda c: c["config"]["meta"]["synthetic"].update(draw="normal"), "config.meta.synthetic.draw"),
])
def test_an_incomplete_entry_is_a_clear_error_naming_the_column(tmp_path: Path, column, change, message) -> None:
    project = _project_with(tmp_path, lambda columns: change(columns[column]))

    with pytest.raises(features.FeatureContractError, match=message):
        features.read_features(project)
