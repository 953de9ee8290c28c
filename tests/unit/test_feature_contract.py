"""One feature list (custlabel.features): the dbt contracts, the reasons and the benchmark agree with it."""

from __future__ import annotations

from pathlib import Path

import yaml

from custlabel import features, reasons
from custlabel.devtools.benchmarks import scoring as scoring_benchmark

MARTS = Path(__file__).resolve().parents[2] / "models" / "marts"


def _contract(folder: str, model: str) -> dict[str, str]:
    """The typed columns a dbt model's YAML declares, in order."""
    models = yaml.safe_load((MARTS / folder / f"_{folder}__models.yml").read_text())["models"]
    (entry,) = [m for m in models if m["name"] == model]
    assert entry["config"]["contract"]["enforced"] is True
    return {column["name"]: column["data_type"] for column in entry["columns"]}


def test_the_scored_feature_mart_declares_the_feature_list() -> None:
    assert _contract("features", "customer_features_current") == features.FEATURE_MART_COLUMNS


def test_the_training_set_declares_the_features_and_the_outcome() -> None:
    assert _contract("labels", "training_set") == {**features.FEATURE_MART_COLUMNS, **features.OUTCOME_COLUMNS}


def test_model_features_are_the_numeric_and_categorical_ones_never_a_sensitive_attribute_or_provenance() -> None:
    assert features.MODEL_FEATURES == features.NUMERIC_FEATURES + features.CATEGORICAL_FEATURES
    assert not set(features.MODEL_FEATURES) & set(features.SENSITIVE_ATTRIBUTES + features.PROVENANCE_COLUMNS)


def test_every_numeric_feature_has_reasons_in_words_and_no_other() -> None:
    assert set(reasons.PHRASES) == set(features.NUMERIC_FEATURES)


def test_the_scoring_benchmark_draws_the_contracted_columns() -> None:
    assert list(scoring_benchmark.CATEGORIES) == features.CATEGORICAL_FEATURES + features.SENSITIVE_ATTRIBUTES
    assert scoring_benchmark.NULLABLE <= set(features.NUMERIC_FEATURES)
    assert scoring_benchmark.RATES <= set(features.NUMERIC_FEATURES)


def test_the_feature_history_declares_the_feature_list() -> None:
    assert _contract("features", "customer_features") == features.FEATURE_MART_COLUMNS
