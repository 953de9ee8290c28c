"""The feature contract, read from the features' dbt YAML: the one list training, scoring, reasons and benchmarks use.

Each column of customer_features_current in models/marts/features/_features__models.yml
carries its type (the enforced dbt contract) and, in `config.meta`, what custlabel needs
to know of it: its kind, a numeric feature's reasons in words, and how the benchmarks draw
it. Adding a feature is its SQL, its YAML entry and a test (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from custlabel.config import DEFAULT_PROJECT_DIR
from custlabel.errors import CustlabelError

FEATURES_FILE = Path("models/marts/features/_features__models.yml")
SCORED_MART = "customer_features_current"
KEY_COLUMNS = ["customer_id", "as_of_date"]
# numeric and categorical are model features; sensitive attributes feed the fairness report
# only; provenance says how a row was built ('observed' by the snapshot or 'reconstructed').
KINDS = {"numeric": "double precision", "categorical": "text", "sensitive": "text", "provenance": "text"}
DRAWS = {"exponential", "share", "trend"}


class FeatureContractError(CustlabelError):
    """The features' YAML does not say what custlabel needs to know of a column."""


@dataclass(frozen=True)
class Feature:
    """One column of the scored feature mart, with its metadata."""

    name: str
    data_type: str
    kind: str
    reason: tuple[str, str, str] | None = None
    reason_facts: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    synthetic: dict[str, Any] = field(default_factory=dict)


def _feature(column: dict[str, Any], where: str) -> Feature:
    name, data_type = column["name"], column.get("data_type")
    meta = (column.get("config") or {}).get("meta") or {}
    kind = meta.get("feature")
    if kind not in KINDS:
        raise FeatureContractError(f"{where}: column {name} needs config.meta.feature, one of {sorted(KINDS)} (got {kind!r})")
    if data_type != KINDS[kind]:
        raise FeatureContractError(f"{where}: {kind} column {name} must have data_type {KINDS[kind]!r} (got {data_type!r})")
    synthetic = meta.get("synthetic") or {}
    reason = None
    if kind == "numeric":
        words = meta.get("reason") or {}
        if not all(isinstance(words.get(side), str) and words[side] for side in ("high", "low", "unknown")):
            raise FeatureContractError(f"{where}: numeric column {name} needs config.meta.reason with high, low and unknown words")
        reason = (words["high"], words["low"], words["unknown"])
        if synthetic.get("draw") not in DRAWS:
            raise FeatureContractError(f"{where}: numeric column {name} needs config.meta.synthetic.draw, one of {sorted(DRAWS)}")
    elif kind in ("categorical", "sensitive") and not synthetic.get("values"):
        raise FeatureContractError(f"{where}: {kind} column {name} needs config.meta.synthetic.values (what the benchmarks draw)")
    facts = {side: [(float(bound), str(text)) for bound, text in pairs] for side, pairs in (meta.get("reason_facts") or {}).items()}
    return Feature(name, data_type, kind, reason, facts, synthetic)


def read_features(project_dir: Path = DEFAULT_PROJECT_DIR) -> list[Feature]:
    """Every column of customer_features_current but the keys, in the contract's order, checked."""
    path = project_dir / FEATURES_FILE
    models = yaml.safe_load(path.read_text())["models"]
    (mart,) = [model for model in models if model["name"] == SCORED_MART]
    columns = mart["columns"]
    keys = [column["name"] for column in columns[: len(KEY_COLUMNS)]]
    if keys != KEY_COLUMNS:
        raise FeatureContractError(f"{path}: {SCORED_MART} must start with the key columns {KEY_COLUMNS} (got {keys})")
    return [_feature(column, str(path)) for column in columns[len(KEY_COLUMNS):]]


FEATURES = read_features()


def of_kind(kind: str) -> list[str]:
    """The names of the features of one kind, in the contract's order."""
    return [feature.name for feature in FEATURES if feature.kind == kind]


NUMERIC_FEATURES = of_kind("numeric")
CATEGORICAL_FEATURES = of_kind("categorical")
SENSITIVE_ATTRIBUTES = of_kind("sensitive")
PROVENANCE_COLUMNS = of_kind("provenance")
MODEL_FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES

# The longest look back of any feature (the *_365d ones and the active-customer rule).
LOOKBACK_DAYS = 365

LABEL_COLUMN = "is_bad"

# The typed columns of the contracted feature mart customer_features_current, in order.
FEATURE_MART_COLUMNS: dict[str, str] = {
    "customer_id": "text",
    "as_of_date": "date",
    **{feature.name: feature.data_type for feature in FEATURES},
}

# What training_set adds: the outcome of the window after as_of_date.
OUTCOME_COLUMNS: dict[str, str] = {
    "window_end": "date",
    "net_paid_revenue": "double precision",
    "unpaid_invoices_count": "integer",
    LABEL_COLUMN: "integer",
}
