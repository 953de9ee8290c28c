"""The smoke test's signature check: tonight's columns in Postgres's and in Spark's type names."""

from __future__ import annotations

import pytest

from custlabel.release import smoke
from custlabel.training.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES

SIGNATURE = {**{name: "double" for name in NUMERIC_FEATURES}, **{name: "string" for name in CATEGORICAL_FEATURES}}
KEYS = {"customer_id": "text", "as_of_date": "date"}


def tonight(number: str, text: str) -> dict[str, str]:
    return {**KEYS, **{name: number for name in NUMERIC_FEATURES}, **{name: text for name in CATEGORICAL_FEATURES}}


@pytest.mark.parametrize(("number", "text"), [("double precision", "text"), ("double", "string")], ids=["postgres", "spark"])
def test_tonights_feature_columns_match_the_signature_on_either_engine(number: str, text: str) -> None:
    assert smoke.signature_problems(SIGNATURE, tonight(number, text)) == []
    integers = {**SIGNATURE, NUMERIC_FEATURES[0]: "long"}
    assert smoke.signature_problems(integers, tonight(number, text)) == []


@pytest.mark.parametrize(("number", "text"), [("double precision", "text"), ("double", "string")], ids=["postgres", "spark"])
def test_a_number_where_the_signature_wants_text_is_a_mismatch(number: str, text: str) -> None:
    swapped = {**SIGNATURE, CATEGORICAL_FEATURES[0]: "double"}
    (problem,) = smoke.signature_problems(swapped, tonight(number, text))
    assert problem.startswith("types differ from tonight's: ") and CATEGORICAL_FEATURES[0] in problem
