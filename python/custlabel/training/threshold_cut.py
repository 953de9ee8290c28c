"""The label rule every engine applies: "bad" when the score reaches the threshold, else "good"."""

from __future__ import annotations

import numpy as np
from psycopg import sql

BAD, GOOD = "bad", "good"


def is_bad(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Which scores are labelled bad (a boolean array)."""
    return np.asarray(scores, dtype=float) >= threshold


def labels(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The labels of scores: "bad" or "good"."""
    return np.where(is_bad(scores, threshold), BAD, GOOD)


def label_sql(score: sql.Composable, threshold: sql.Composable) -> sql.Composable:
    """The same rule as a SQL expression over a score column and a threshold."""
    return sql.SQL("case when {score} >= {threshold} then {bad} else {good} end").format(
        score=score, threshold=threshold, bad=sql.Literal(BAD), good=sql.Literal(GOOD)
    )
