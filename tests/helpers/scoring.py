"""Stand-in models of several kinds over the scoring benchmark's synthetic features, and its stand-in rule baseline."""

from __future__ import annotations

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from custlabel.devtools.benchmarks.scoring import (  # noqa: F401 (tests import them here)
    RULE_REASON,
    create_synthetic_rule_baseline,
    fit_stand_in,
)
from custlabel.training.deployed_model import DeployedModel

ESTIMATORS = {
    "logreg": lambda: LogisticRegression(max_iter=1000),
    "forest": lambda: RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0),
    "big-forest": lambda: RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0),
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0),
}


def fit_model(frame: pd.DataFrame, kind: str = "logreg", name: str = "bench", version: str = "1", threshold: float = 0.5) -> DeployedModel:
    """A stand-in model fitted on synthetic outcomes, with the training pipeline. kind: logreg | forest | big-forest | hgb."""
    return fit_stand_in(frame, ESTIMATORS[kind](), name, version, threshold)
