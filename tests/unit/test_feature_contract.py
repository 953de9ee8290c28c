"""The feature marts' contracts and the Python feature list agree; provenance columns never become features."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from custlabel import features

PROJECT = Path(__file__).resolve().parents[2]
CONTRACTS = {
    "customer_features_current": PROJECT / "models/marts/features/_features__models.yml",
    "training_set": PROJECT / "models/marts/labels/_labels__models.yml",
}
OUTCOME_COLUMNS = {"window_end", "net_paid_revenue", "unpaid_invoices_count", "is_bad"}


def _contract_columns(model: str) -> set[str]:
    spec = yaml.safe_load(CONTRACTS[model].read_text())
    (entry,) = [entry for entry in spec["models"] if entry["name"] == model]
    return {column["name"] for column in entry["columns"]}


@pytest.mark.parametrize("model", sorted(CONTRACTS))
def test_every_contract_column_has_one_role(model):
    roles = [
        set(features.KEY_COLUMNS),
        set(features.MODEL_FEATURES),
        set(features.SENSITIVE_ATTRIBUTES),
        set(features.PROVENANCE_COLUMNS),
    ]
    if model == "training_set":
        roles.append(OUTCOME_COLUMNS)
    assert _contract_columns(model) == set().union(*roles)
    assert sum(len(role) for role in roles) == len(set().union(*roles)), "a column has two roles"


def test_history_source_is_provenance_not_a_feature():
    assert "history_source" in features.PROVENANCE_COLUMNS
    assert "history_source" not in features.MODEL_FEATURES
