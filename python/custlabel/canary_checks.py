"""A canary night's health checks: the canary's labels on its slice against the champion's on the same customers.

The champion scores the canary slice too (a shadow scoring kept in
`<schema>.canary_shadow_labels`, never published), so each check compares the two
models on the same customers: scores present and in range, bad share, score
distribution distance (PSI), scoring errors and time, and, once a canary night's
outcome window has matured, realized precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from custlabel import baseline, canary, db, label_rule, writeback
from custlabel.config import Settings
from custlabel.deployed import DeployedModel
from custlabel.features import CATEGORICAL_FEATURES
from custlabel.gates import GateResult
from custlabel.release_policy import Canary

SHADOW = "canary_shadow_labels"
OUTCOMES = "customer_outcomes"
CURRENT_FEATURES = "customer_features_current"

SHADOW_DDL = """
create table if not exists {table} (
    as_of_date date not null,
    customer_id text not null,
    canary_version text not null,
    model_name text not null,
    model_version text not null,
    score double precision not null,
    label text not null,
    primary key (as_of_date, canary_version, customer_id)
);
comment on table {table} is 'One row per night, canary version and customer of its slice: the champion''s label of the same customer (shadow, never published).';
"""


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `current` against `reference`, over the reference's quantile bins."""
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    edges = np.concatenate([[-np.inf], edges[1:-1], [np.inf]]) if len(edges) > 2 else np.array([-np.inf, np.median(reference), np.inf])
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(current, edges)[0] / len(current)
    expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass(frozen=True)
class SliceNight:
    """One night of the canary slice: the canary's published labels and the champion's shadow labels."""

    as_of_date: date
    expected_rows: int
    canary_scores: np.ndarray
    canary_bad: np.ndarray
    champion_scores: np.ndarray
    champion_bad: np.ndarray
    seconds: float
    comparable: bool  # both are registered models, whose scores share a scale


@dataclass(frozen=True)
class Realized:
    """Realized precision of the canary and of the champion on the canary's matured slice nights."""

    customers: int
    canary_precision: float | None
    champion_precision: float | None


def health_checks(policy: Canary, night: SliceNight, realized: Realized | None) -> list[GateResult]:
    """The canary night's verdicts: every gated one must pass for the night to count as healthy."""
    scores = night.canary_scores
    in_range = bool(len(scores)) and bool(np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1)))
    present = len(scores) == night.expected_rows and in_range
    canary_share = float(night.canary_bad.mean()) if len(night.canary_bad) else float("nan")
    champion_share = float(night.champion_bad.mean()) if len(night.champion_bad) else float("nan")
    gap = abs(canary_share - champion_share)
    distance = psi(night.champion_scores, scores)
    results = [
        GateResult(
            "canary_scores_present", present,
            f"{len(scores):,} of {night.expected_rows:,} slice customers labelled, scores "
            + ("all in [0, 1]" if in_range else "missing or outside [0, 1]"),
            {"rows": len(scores), "expected_rows": night.expected_rows},
        ),
        GateResult(
            "canary_bad_share", bool(gap <= policy.max_bad_share_gap),
            f"bad share {canary_share:.1%} against the champion's {champion_share:.1%} on the same slice"
            f" (gap {gap:.1%}, at most {policy.max_bad_share_gap:.0%})",
            {"canary": canary_share, "champion": champion_share, "gap": gap, "max": policy.max_bad_share_gap},
        ),
        GateResult(
            "canary_score_psi", bool(distance <= policy.max_score_psi),
            f"score PSI {distance:.3f} against the champion's scores (at most {policy.max_score_psi:g})"
            + ("" if night.comparable else "; reported only: the rule baseline's scores are on another scale"),
            {"psi": distance, "max": policy.max_score_psi},
            gated=night.comparable,
        ),
        GateResult(
            "canary_scoring", night.seconds <= policy.max_scoring_seconds,
            f"slice labelled in {night.seconds:.1f} s (at most {policy.max_scoring_seconds:g} s), no scoring error",
            {"seconds": night.seconds, "max": policy.max_scoring_seconds},
        ),
    ]
    results.append(realized_check(policy, realized))
    return results


def realized_check(policy: Canary, realized: Realized | None) -> GateResult:
    """Realized precision on the slice against the champion's on the same customers, once a canary night matured."""
    if realized is None or not realized.customers or realized.canary_precision is None or realized.champion_precision is None:
        return GateResult("canary_realized_precision", True, "no canary night's outcome window has matured yet", gated=False)
    drop = realized.champion_precision - realized.canary_precision
    return GateResult(
        "canary_realized_precision", drop <= policy.max_precision_drop,
        f"realized precision {realized.canary_precision:.1%} against the champion's {realized.champion_precision:.1%}"
        f" on {realized.customers:,} matured slice customers (drop at most {policy.max_precision_drop:.0%})",
        {"canary": realized.canary_precision, "champion": realized.champion_precision, "customers": realized.customers},
    )


def scoring_failed(error: BaseException) -> GateResult:
    """The verdict of a night whose canary could not label its slice."""
    return GateResult("canary_scoring", False, f"the canary failed to label its slice: {type(error).__name__}: {error}"[:500])


def _frame(conn: psycopg.Connection, query: sql.Composable, params: list | None = None) -> pd.DataFrame:
    cursor = conn.execute(query, params)
    return pd.DataFrame(cursor.fetchall(), columns=[column.name for column in cursor.description])


def _slice(percent: float) -> sql.Composable:
    return sql.SQL("{} < {}").format(canary.bucket_sql("customer_id"), sql.Literal(percent))


def shadow_labels(conn: psycopg.Connection, schema: str, champion: DeployedModel, as_of: date, percent: float) -> pd.DataFrame:
    """The champion's scores and labels of tonight's canary slice (customer_id, score, label)."""
    if champion.is_rule:
        # The night as a literal: the bucket's modulo sign would be read as a placeholder beside bound parameters.
        frame = _frame(conn, sql.SQL("select customer_id, score from {} where as_of_date = {} and {}").format(
            sql.Identifier(schema, champion.relation or baseline.RELATION), sql.Literal(as_of), _slice(percent)))
        scores = frame["score"].astype(float).to_numpy()
    else:
        frame = _frame(conn, sql.SQL("select * from {} where {}").format(
            sql.Identifier(schema, CURRENT_FEATURES), _slice(percent)))
        columns = list(champion.feature_columns)
        features = frame[columns].copy()
        numeric = [c for c in columns if c not in CATEGORICAL_FEATURES]
        features[numeric] = features[numeric].astype(float)
        scores = champion.scores(features) if len(frame) else np.array([])
    return pd.DataFrame({
        "customer_id": frame["customer_id"], "score": scores,
        "label": label_rule.labels(scores, float(champion.threshold)) if len(scores) else [],
    })


def read_night(
    settings: Settings, schema: str, as_of: date, canary_model: DeployedModel, champion: DeployedModel,
    percent: float, seconds: float,
) -> SliceNight:
    """Tonight's slice: the canary's published labels, and the champion's shadow labels (stored for later nights)."""
    table = sql.Identifier(schema, SHADOW)
    with db.connect(settings) as conn:
        published = _frame(conn, sql.SQL(
            "select customer_id, score, label from {} where model_name = %s and model_version = %s and as_of_date = %s"
        ).format(sql.Identifier(schema, writeback.LABELS)), [canary_model.name, str(canary_model.version), as_of])
        expected = conn.execute(sql.SQL("select count(*) from {} where {}").format(
            sql.Identifier(schema, CURRENT_FEATURES), _slice(percent))).fetchone()[0]
        shadow = shadow_labels(conn, schema, champion, as_of, percent)
        conn.execute(sql.SQL(SHADOW_DDL).format(table=table))
        conn.execute(sql.SQL("delete from {} where as_of_date = %s and canary_version = %s").format(table),
                     [as_of, str(canary_model.version)])
        with conn.cursor().copy(sql.SQL(
            "copy {} (as_of_date, customer_id, canary_version, model_name, model_version, score, label) from stdin"
        ).format(table)) as copy:
            for row in shadow.itertuples(index=False):
                copy.write_row([as_of, row.customer_id, str(canary_model.version), champion.name,
                                str(champion.version), float(row.score), row.label])
    return SliceNight(
        as_of_date=as_of,
        expected_rows=int(expected),
        canary_scores=published["score"].astype(float).to_numpy(),
        canary_bad=(published["label"] == "bad").to_numpy(),
        champion_scores=shadow["score"].astype(float).to_numpy(),
        champion_bad=(shadow["label"] == "bad").to_numpy(),
        seconds=seconds,
        comparable=not (canary_model.is_rule or champion.is_rule),
    )


def read_realized(settings: Settings, schema: str, canary_model: DeployedModel) -> Realized | None:
    """Realized precision of the canary's slice nights whose outcome window has matured, and the champion's shadow."""
    with db.connect(settings) as conn:
        if not (db.relation_exists(conn, schema, SHADOW) and db.relation_exists(conn, schema, OUTCOMES)):
            return None
        row = conn.execute(sql.SQL(
            "select count(o.is_bad),"
            " avg(o.is_bad::float8) filter (where h.label = 'bad'), avg(o.is_bad::float8) filter (where s.label = 'bad')"
            " from {history} as h"
            " join {shadow} as s on s.as_of_date = h.as_of_date and s.customer_id = h.customer_id"
            "  and s.canary_version = h.model_version"
            " join {outcomes} as o on o.customer_id = h.customer_id and o.as_of_date = h.as_of_date"
            " where h.model_name = %s and h.model_version = %s"
        ).format(
            history=sql.Identifier(schema, writeback.HISTORY), shadow=sql.Identifier(schema, SHADOW),
            outcomes=sql.Identifier(schema, OUTCOMES),
        ), [canary_model.name, str(canary_model.version)]).fetchone()
    return Realized(int(row[0]), row[1], row[2])
