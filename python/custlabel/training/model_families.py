"""The model families training searches: each with its estimator, search space, load trust and SQL translation.

Adding a family is one entry in FAMILIES (and its test): training searches it,
the registry trusts its types when saving it, and in-warehouse scoring knows
whether its SQL can be trusted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from custlabel.errors import CustlabelError
from custlabel.training import bgnbd, recalibration
from custlabel.training.features import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    SENSITIVE_ATTRIBUTES,
)

# Types skops must trust to load any of our pipelines, whatever the family (numpy dtypes,
# and the Platt map a pipeline is wrapped in when training recalibrated it).
PIPELINE_TRUSTED_TYPES = ("numpy.dtype", recalibration.TRUSTED_TYPE)
# Beyond this many leaves a forest's SQL passes Postgres's 1,664-column limit, and
# orbital takes minutes to find out.
MAX_SQL_TREE_LEAVES = 1_000


def _translates(_estimator: BaseEstimator) -> str | None:
    return None


def _tree_leaves_obstacle(estimator: BaseEstimator) -> str | None:
    trees = np.ravel(getattr(estimator, "estimators_", []))
    leaves = sum(int(tree.tree_.n_leaves) for tree in trees if hasattr(tree, "tree_"))
    if leaves > MAX_SQL_TREE_LEAVES:
        return f"{leaves:,} tree leaves: the SQL would pass Postgres's 1,664-column limit"
    return None


def _hist_gradient_boosting_obstacle(_estimator: BaseEstimator) -> str | None:
    return "orbital's SQL for histogram gradient boosting differs from Python (up to 0.14 seen)"


BGNBD_OBSTACLE = "its BG/NBD features (probability alive, expected purchases) are computed in Python, not in SQL"


@dataclass(frozen=True)
class ModelFamily:
    """One kind of classifier the search tries."""

    name: str
    estimator_type: type
    # random_state -> a fresh, unfitted estimator (kept small: two shared cores)
    make: Callable[[int], BaseEstimator]
    # hyperparameters of the pipeline's "model" step and the values tried
    space: dict[str, list[Any]]
    # what skops must trust to load a fitted one (beyond PIPELINE_TRUSTED_TYPES)
    trusted_types: tuple[str, ...] = ()
    # why a fitted one should not be scored in SQL (None: translate it, the parity check decides)
    sql_obstacle: Callable[[BaseEstimator], str | None] = field(default=_translates)
    # whether its pipeline adds the BG/NBD outputs as features (then it never translates to SQL)
    bgnbd_features: bool = False


FAMILIES: dict[str, ModelFamily] = {
    family.name: family
    for family in (
        ModelFamily(
            name="logistic_regression",
            estimator_type=LogisticRegression,
            make=lambda _random_state: LogisticRegression(max_iter=2000),
            space={"model__C": [0.01, 0.1, 1.0, 10.0], "model__class_weight": [None, "balanced"]},
        ),
        ModelFamily(
            name="random_forest",
            estimator_type=RandomForestClassifier,
            make=lambda random_state: RandomForestClassifier(
                n_estimators=100, max_samples=0.5, n_jobs=1, random_state=random_state
            ),
            space={
                "model__max_depth": [8, 12, 16],
                "model__min_samples_leaf": [20, 100],
                "model__max_features": ["sqrt", 0.3],
            },
            trusted_types=("sklearn.tree._tree.Tree",),
            sql_obstacle=_tree_leaves_obstacle,
        ),
        ModelFamily(
            name="hist_gradient_boosting",
            estimator_type=HistGradientBoostingClassifier,
            make=lambda random_state: HistGradientBoostingClassifier(
                max_iter=200, early_stopping=True, n_iter_no_change=10, random_state=random_state
            ),
            space={
                "model__learning_rate": [0.05, 0.1],
                "model__max_leaf_nodes": [15, 31, 63],
                "model__min_samples_leaf": [50, 200],
                "model__l2_regularization": [0.0, 1.0],
            },
            trusted_types=(
                "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
                "custlabel.training.bgnbd.BGNBDFeatures",
                "custlabel.training.bgnbd.BGNBDParameters",
            ),
            sql_obstacle=_hist_gradient_boosting_obstacle,
            # Its SQL is not trusted anyway, so the buy-till-you-die outputs cost it nothing.
            bgnbd_features=True,
        ),
    )
}


def get(name: str) -> ModelFamily:
    """The family of this name; a clear error for an unknown one."""
    if name not in FAMILIES:
        raise CustlabelError(f"unknown model family {name!r}: expected one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def trusted_types() -> list[str]:
    """Every type skops must trust to load a pipeline of any family."""
    types = list(PIPELINE_TRUSTED_TYPES)
    for family in FAMILIES.values():
        types += [name for name in family.trusted_types if name not in types]
    return types


def search_spaces() -> dict[str, dict[str, list[Any]]]:
    """Each family's search space by name (hashed into a version's config hash)."""
    return {name: family.space for name, family in FAMILIES.items()}


def family_of(estimator: BaseEstimator) -> ModelFamily | None:
    """The family a fitted estimator belongs to, None for a kind training never searches."""
    return next((f for f in FAMILIES.values() if isinstance(estimator, f.estimator_type)), None)


def uses_bgnbd(pipeline: Any) -> bool:
    """Whether a fitted pipeline (recalibrated or not) computes BG/NBD features."""
    pipeline = recalibration.uncalibrated(pipeline)
    features = pipeline.named_steps.get("features") if hasattr(pipeline, "named_steps") else None
    return features is not None and "bgnbd" in getattr(features, "named_transformers_", {})


def sql_obstacle(pipeline: Any) -> str | None:
    """Why a fitted pipeline (recalibrated or not) should not be translated to SQL at all, or None; checked before orbital runs."""
    if uses_bgnbd(pipeline):
        return BGNBD_OBSTACLE
    pipeline = recalibration.uncalibrated(pipeline)
    estimator = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    family = family_of(estimator)
    return _tree_leaves_obstacle(estimator) if family is None else family.sql_obstacle(estimator)


def build_pipeline(
    estimator: BaseEstimator,
    numeric: list[str] | None = None,
    categorical: list[str] | None = None,
    bgnbd_window_days: int | None = None,
) -> Pipeline:
    """All preprocessing and the classifier in one Pipeline; sensitive attributes are not features.

    Args:
        numeric, categorical: the feature columns it reads (default: the whole contract).
        bgnbd_window_days: add BG/NBD's probability alive and expected purchases in this many days.
    """
    numeric = list(NUMERIC_FEATURES if numeric is None else numeric)
    categorical = list(CATEGORICAL_FEATURES if categorical is None else categorical)
    if set(numeric + categorical) & set(SENSITIVE_ATTRIBUTES):
        raise CustlabelError("a sensitive attribute is listed as a model feature")
    # Kept to steps orbital can translate to SQL: no missing-value indicators, and the
    # categorical features come without nulls from dbt ('unknown'). The purchase history
    # since the first purchase reaches a model only through BG/NBD: raw, its ages grow
    # with the data's history (a night near the data's start sees short lifetimes),
    # which cost the demo world's test precision 0.727 -> 0.631 as plain features.
    raw = [name for name in numeric if name not in bgnbd.INPUT_FEATURES]
    branches: list[tuple[str, Any, list[str]]] = [
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), raw)
    ]
    if categorical:
        branches.append(("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical))
    if bgnbd_window_days is not None:
        if not set(bgnbd.INPUT_FEATURES) <= set(numeric):
            raise CustlabelError(f"BG/NBD features need {', '.join(bgnbd.INPUT_FEATURES)} among the features")
        buy_till_you_die = Pipeline(
            [("bgnbd", bgnbd.BGNBDFeatures(window_days=bgnbd_window_days)), ("scale", StandardScaler())]
        )
        branches.append(("bgnbd", buy_till_you_die, list(bgnbd.INPUT_FEATURES)))
    return Pipeline([("features", ColumnTransformer(branches, remainder="drop")), ("model", estimator)])


def pipeline_for(
    family: ModelFamily, random_state: int, numeric: list[str], categorical: list[str], window_days: int
) -> Pipeline:
    """A family's unfitted pipeline over these features, with BG/NBD features when it takes them and they can be computed."""
    with_bgnbd = family.bgnbd_features and set(bgnbd.INPUT_FEATURES) <= set(numeric)
    return build_pipeline(family.make(random_state), numeric, categorical, window_days if with_bgnbd else None)
