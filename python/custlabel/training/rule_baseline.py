"""The day-one rule baseline: the dbt model rule_baseline_scores, judged on the models' test period."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from psycopg import sql

from custlabel.config import Settings
from custlabel.training import evaluate, threshold_cut
from custlabel.training.deployed_model import FALLBACK, UNREGISTERED, DeployedModel
from custlabel.training.features import KEY_COLUMNS, LABEL_COLUMN
from custlabel.training.training_data import TABLE
from custlabel.warehouse import db, engine_schemas

RELATION = "rule_baseline_scores"
MODEL_NAME = "rule-baseline"
# rule_baseline_scores labels "bad" exactly when score >= 0.5.
THRESHOLD = 0.5
SQL_PATH = Path("models") / "marts" / "scoring" / f"{RELATION}.sql"
# The rule as a deployed model, before the registry has given it a version.
RULE = DeployedModel(MODEL_NAME, UNREGISTERED, FALLBACK, THRESHOLD, relation=RELATION)

log = logging.getLogger(__name__)


def sql_text(settings: Settings) -> str:
    """The rule as written in dbt (recorded with the baseline so a change makes a new version)."""
    path = settings.project_dir / SQL_PATH
    return path.read_text() if path.is_file() else ""


def exists(settings: Settings) -> bool:
    """Whether dbt has built the rule's scores in the target schema (on the target's engine)."""
    return engine_schemas.of_target(settings, settings.schema).exists(RELATION)


def read_scores(settings: Settings, as_of_date: date, customer_ids: list[str] | None = None) -> pd.DataFrame:
    """The rule's score and label for one as_of_date (optionally only some customers), on the target's engine."""
    source = engine_schemas.of_target(settings, settings.schema)
    frame = source.frame(
        f"select customer_id, as_of_date, score, label from {source.name(RELATION)} where as_of_date = :as_of_date",
        {"as_of_date": as_of_date},
    )
    if customer_ids is not None:
        frame = frame[frame["customer_id"].isin(customer_ids)].reset_index(drop=True)
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    return frame


def evaluate_on(settings: Settings, rows: pd.DataFrame) -> tuple[evaluate.Metrics | None, pd.DataFrame]:
    """The rule's test figures on exactly these (customer_id, as_of_date, is_bad) rows.

    Returns the metrics (None when dbt has not built the rule yet) and the rows
    with `baseline_score` and `baseline_label` added.
    """
    if not exists(settings):
        log.warning("%s.%s does not exist: the rule baseline is not evaluated", settings.schema, RELATION)
        return None, rows.assign(baseline_score=np.nan, baseline_label=None)
    scores = pd.concat(
        [
            read_scores(settings, day, group["customer_id"].tolist())
            for day, group in rows.groupby("as_of_date")
        ],
        ignore_index=True,
    ).rename(columns={"score": "baseline_score", "label": "baseline_label"})
    merged = rows.merge(scores, on=KEY_COLUMNS, how="left", validate="one_to_one")
    missing = int(merged["baseline_score"].isna().sum())
    if missing:
        raise evaluate.EvaluationError(
            f"{RELATION} has no score for {missing} training_set rows: rebuild it with dbt"
        )
    scores = merged["baseline_score"].to_numpy()
    metrics = evaluate.metrics_for_labels(
        merged[LABEL_COLUMN].to_numpy(), threshold_cut.is_bad(scores, THRESHOLD), scores
    )
    return metrics, merged


def evaluate_latest(settings: Settings) -> tuple[date, evaluate.Metrics | None]:
    """The rule's figures on the newest matured as_of_date (the models' test period)."""
    query = sql.SQL(
        "select customer_id, as_of_date, {label} from {table} where as_of_date = (select max(as_of_date) from {table})"
    ).format(label=sql.Identifier(LABEL_COLUMN), table=sql.Identifier(settings.schema, TABLE))
    rows = db.read_frame(settings, query.as_string())
    if rows.empty:
        raise evaluate.EvaluationError(f"{settings.schema}.{TABLE} is empty: nothing to evaluate the rule on")
    rows["as_of_date"] = pd.to_datetime(rows["as_of_date"]).dt.date
    metrics, _ = evaluate_on(settings, rows)
    return rows["as_of_date"].iloc[0], metrics
