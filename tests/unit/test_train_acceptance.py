"""The acceptance file: the repository's default is valid, and mistakes get one clear message."""

from pathlib import Path

import pytest
import yaml

from custlabel.config import DEFAULT_PROJECT_DIR
from custlabel.training import acceptance

DEFAULT = DEFAULT_PROJECT_DIR / "acceptance.yml"


def _variant(**changes: dict) -> str:
    raw = yaml.safe_load(DEFAULT.read_text())
    for section, values in changes.items():
        raw[section].update(values)
    return yaml.safe_dump(raw)


def test_repository_default_is_valid_and_hashed() -> None:
    criteria = acceptance.read_file(DEFAULT)
    assert 0 < criteria.performance.min_precision <= 1
    assert 0 < criteria.performance.min_recall <= 1
    assert criteria.performance.validation_precision >= criteria.performance.min_precision
    assert len(criteria.sha256) == 64
    assert set(criteria.fairness.attributes) <= {"country", "gender", "age_band"}


def test_out_of_range_and_misspelled_keys_are_named() -> None:
    text = _variant(performance={"min_precision": 1.5, "min_recal": 0.3})
    with pytest.raises(acceptance.AcceptanceError) as error:
        acceptance.parse(text, source="acceptance.yml")
    message = str(error.value)
    assert "acceptance.yml is invalid" in message
    assert "performance.min_precision: Input should be less than or equal to 1" in message
    assert "performance.min_recal: unknown key (typo?)" in message


def test_missing_section_is_named() -> None:
    raw = yaml.safe_load(DEFAULT.read_text())
    del raw["fairness"]
    with pytest.raises(acceptance.AcceptanceError, match="fairness: Field required"):
        acceptance.parse(yaml.safe_dump(raw))


def test_a_criterion_every_model_passes_is_refused() -> None:
    with pytest.raises(acceptance.AcceptanceError, match="cannot both be 0"):
        acceptance.parse(_variant(performance={"min_precision": 0, "min_recall": 0}))


def test_fairness_attributes_must_be_sensitive_attributes() -> None:
    with pytest.raises(acceptance.AcceptanceError, match=r"unknown attributes \['segment'\]"):
        acceptance.parse(_variant(fairness={"attributes": ["gender", "segment"]}))


def test_not_yaml_or_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(acceptance.AcceptanceError, match="not valid YAML"):
        acceptance.parse("performance: [unclosed")
    with pytest.raises(acceptance.AcceptanceError, match="must be a mapping"):
        acceptance.parse("- just\n- a list\n")
    with pytest.raises(acceptance.AcceptanceError, match="no acceptance criteria at"):
        acceptance.read_file(tmp_path / "acceptance.yml")
