"""The one shape of a model ready to label customers: a registered pipeline, or the rule baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from custlabel.training.features import MODEL_FEATURES

CHAMPION = "champion"
CHALLENGER = "challenger"
FALLBACK = "fallback"
# The release path (issue 13): the version labelling the canary slice, and the champion it replaced.
CANARY = "canary"
PREVIOUS_CHAMPION = "previous-champion"
UNREGISTERED = "unregistered"


def model_label(name: str, version: str) -> str:
    """How the operator reads a model's name: `customer-labels v3`, or `rule-baseline (unregistered)`."""
    return f"{name} ({UNREGISTERED})" if str(version) == UNREGISTERED else f"{name} v{version}"


@dataclass(frozen=True)
class DeployedModel:
    """A model found by alias (or a stand-in): what scoring, evaluation and the benchmarks use.

    A fitted model has a `pipeline`: `pipeline.predict_proba(frame[feature_columns])[:, 1]`
    is the probability of bad. The rule baseline has none: its scores are the rows
    dbt builds in `relation`.
    """

    name: str
    version: str
    alias: str
    threshold: float
    pipeline: Any = None
    feature_columns: list[str] = field(default_factory=lambda: list(MODEL_FEATURES))
    relation: str | None = None

    @property
    def label(self) -> str:
        """The name and version as the operator reads them."""
        return model_label(self.name, self.version)

    @property
    def is_rule(self) -> bool:
        """Whether this is the rule baseline (scored by copying `relation` in the warehouse)."""
        return self.pipeline is None

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """The probability of bad for each row of a feature frame."""
        if self.pipeline is None:
            raise TypeError(f"{self.name} is a rule whose scores are the rows of {self.relation}")
        return self.pipeline.predict_proba(frame[list(self.feature_columns)])[:, 1].astype(float)
