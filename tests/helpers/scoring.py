"""Stand-in models of several kinds over the scoring benchmark's synthetic features, and its stand-in rule baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from custlabel.devtools.benchmarks.scoring import (  # noqa: F401 (tests import them here)
    RULE_REASON,
    create_synthetic_rule_baseline,
    fit_stand_in,
)
from custlabel.training.deployed_model import DeployedModel
from custlabel.training.features import NUMERIC_FEATURES

ESTIMATORS = {
    "logreg": lambda: LogisticRegression(max_iter=1000),
    "forest": lambda: RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0),
    "big-forest": lambda: RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0),
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0),
}


def fit_model(frame: pd.DataFrame, kind: str = "logreg", name: str = "bench", version: str = "1", threshold: float = 0.5) -> DeployedModel:
    """A stand-in model fitted on synthetic outcomes, with the training pipeline. kind: logreg | forest | big-forest | hgb."""
    return fit_stand_in(frame, ESTIMATORS[kind](), name, version, threshold)


def synthetic_frame(rows: int = 600, seed: int = 3) -> pd.DataFrame:
    """Features of the model's columns with outcomes a stand-in model can learn (synthetic_outcome)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.exponential(5.0, rows) for c in NUMERIC_FEATURES})
    for rate in ("return_rate_365d", "cancel_rate_365d", "late_payment_rate_365d", "online_share_365d"):
        frame[rate] = rng.random(rows)
    frame.loc[rng.random(rows) < 0.1, "days_since_last_sale"] = np.nan
    frame["days_since_last_sale"] *= 40
    frame["segment"] = pd.Series(rng.choice(["retail", "wholesale", "online"], rows)).astype("str")
    return frame
