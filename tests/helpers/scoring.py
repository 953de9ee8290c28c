"""Stand-in models of several kinds and a stand-in rule baseline over the scoring benchmark's synthetic features."""

from __future__ import annotations

import pandas as pd
import psycopg
from psycopg import sql
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from custlabel import label_rule
from custlabel.deployed import DeployedModel
from custlabel.devtools.benchmarks.scoring import fit_stand_in

RULE_REASON = "no purchase in the last 90 days"
ESTIMATORS = {
    "logreg": lambda: LogisticRegression(max_iter=1000),
    "forest": lambda: RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0),
    "big-forest": lambda: RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0),
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0),
}


def fit_model(frame: pd.DataFrame, kind: str = "logreg", name: str = "bench", version: str = "1", threshold: float = 0.5) -> DeployedModel:
    """A stand-in model fitted on synthetic outcomes, with the training pipeline. kind: logreg | forest | big-forest | hgb."""
    return fit_stand_in(frame, ESTIMATORS[kind](), name, version, threshold)


def create_synthetic_rule_baseline(conn: psycopg.Connection, schema: str) -> None:
    """A stand-in for the dbt model rule_baseline_scores over the synthetic features (same columns, one rule)."""
    conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(schema, "rule_baseline_scores")))
    conn.execute(
        sql.SQL(
            "create table {rules} as select customer_id, as_of_date, points as score, {label} as label,"
            " case when points > 0 then {reason} end as reason_1, null::text as reason_2, null::text as reason_3"
            " from (select *, case when coalesce(days_since_last_sale, 366) > 90 then 0.5 else 0 end::float8 as points"
            " from {features}) as f"
        ).format(
            rules=sql.Identifier(schema, "rule_baseline_scores"),
            label=label_rule.label_sql(sql.Identifier("points"), sql.Literal(0.5)),
            reason=sql.Literal(RULE_REASON),
            features=sql.Identifier(schema, "customer_features"),
        )
    )
