"""A canary night's health checks: the canary judged on its own slice, and against another registered model.

The canary itself, whoever the champion is: no scoring error, a score in [0, 1] for
every slice customer, a bad share within acceptance.yml's `max_bad_share`, its scores
close (PSI) to the distribution recorded at its validation, its estimated precision
(mean score of its "bad" labels, calibrated scores) at least `min_precision` minus a
margin, the slice labelled in time, and, once a night's outcome window has matured,
realized precision on the slice. The champion scores the same slice too (a shadow
scoring kept in `<schema>.canary_shadow_labels`, never published): when it is a
registered model, the bad-share and score-PSI gaps between them are gated; the rule
baseline is no standard of behaviour, so against it they are reported only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from custlabel.config import Settings
from custlabel.gate_verdicts import GateResult
from custlabel.release import score_distribution
from custlabel.release.release_policy import Canary
from custlabel.release.score_distribution import ScoreDistribution
from custlabel.scoring import canary_slice, writeback
from custlabel.training import registry, rule_baseline, threshold_cut
from custlabel.training.acceptance import Performance
from custlabel.training.deployed_model import DeployedModel
from custlabel.training.features import CATEGORICAL_FEATURES
from custlabel.warehouse import db

SHADOW = "canary_shadow_labels"
OUTCOMES = "customer_outcomes"
CURRENT_FEATURES = "customer_features_current"
AGAINST_CHAMPION = ("canary_champion_bad_share", "canary_champion_score_psi")

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


def psi(reference: np.ndarray, current: np.ndarray, bins: int = score_distribution.BINS) -> float:
    """Population stability index of `current` against `reference`, over the reference's quantile bins."""
    reference = np.asarray(reference, float)
    if len(reference) == 0:
        return float("nan")
    return ScoreDistribution.of(reference, bins).psi(current)


@dataclass(frozen=True)
class SliceNight:
    """One night of the canary slice: the canary's published labels, the champion's shadow labels, the canary's validation."""

    as_of_date: date
    expected_rows: int
    canary_scores: np.ndarray
    canary_bad: np.ndarray
    champion_scores: np.ndarray
    champion_bad: np.ndarray
    seconds: float
    comparable: bool  # both are registered models, whose scores share a scale
    validation: ScoreDistribution | None = None  # the canary's scores on its validation night


@dataclass(frozen=True)
class Realized:
    """Realized precision of the canary and of the champion on the canary's matured slice nights."""

    customers: int
    canary_precision: float | None
    champion_precision: float | None


def _share(flags: np.ndarray) -> float:
    return float(np.mean(flags)) if len(flags) else float("nan")


def _figure(value: float) -> float | None:
    """A figure for the release log's JSON: None where undefined (an empty slice)."""
    return value if np.isfinite(value) else None


def health_checks(policy: Canary, bounds: Performance, night: SliceNight, realized: Realized | None) -> list[GateResult]:
    """The canary night's verdicts: every gated one must pass for the night to count as healthy."""
    return [
        _scores_present(night),
        _bad_share(bounds, night),
        _validation_psi(policy, night),
        _estimated_precision(policy, bounds, night),
        GateResult(
            "canary_scoring", night.seconds <= policy.max_scoring_seconds,
            f"slice labelled in {night.seconds:.1f} s (at most {policy.max_scoring_seconds:g} s), no scoring error",
            {"seconds": night.seconds, "max": policy.max_scoring_seconds},
        ),
        *_against_champion(policy, night),
        realized_check(policy, bounds, realized, night.comparable),
    ]


def _scores_present(night: SliceNight) -> GateResult:
    scores = night.canary_scores
    in_range = bool(len(scores)) and bool(np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1)))
    return GateResult(
        "canary_scores_present", len(scores) == night.expected_rows and in_range,
        f"{len(scores):,} of {night.expected_rows:,} slice customers labelled, scores "
        + ("all in [0, 1]" if in_range else "missing or outside [0, 1]"),
        {"rows": len(scores), "expected_rows": night.expected_rows},
    )


def _bad_share(bounds: Performance, night: SliceNight) -> GateResult:
    share = _share(night.canary_bad)
    figures = {"canary": _figure(share), "max": bounds.max_bad_share}
    if not share > 0:
        return GateResult("canary_bad_share", False, "nobody on the slice is labelled bad: the label catches no bad customer"
                          f" (acceptance.yml asks a recall of at least {bounds.min_recall:.0%})", figures)
    return GateResult(
        "canary_bad_share", share <= bounds.max_bad_share,
        f"bad share {share:.1%} on the slice (acceptance.yml's max_bad_share {bounds.max_bad_share:.0%})", figures,
    )


def _validation_psi(policy: Canary, night: SliceNight) -> GateResult:
    if night.validation is None:
        return GateResult("canary_validation_psi", False, "no score distribution was recorded at the version's validation:"
                          " validate it (`custlabel validate VERSION`) before its canary")
    distance = night.validation.psi(night.canary_scores)
    return GateResult(
        "canary_validation_psi", bool(distance <= policy.max_validation_psi),
        f"score PSI {distance:.3f} against its own scores at validation (at most {policy.max_validation_psi:g})",
        {"psi": _figure(distance), "max": policy.max_validation_psi, "validation_rows": night.validation.rows},
    )


def _estimated_precision(policy: Canary, bounds: Performance, night: SliceNight) -> GateResult:
    floor = bounds.min_precision - policy.estimated_margin
    flagged = night.canary_scores[night.canary_bad]
    if not len(flagged):
        return GateResult("canary_estimated_precision", True, "nobody labelled bad: no precision to estimate", gated=False)
    estimate = float(np.mean(flagged))
    return GateResult(
        "canary_estimated_precision", bool(estimate >= floor),
        f"estimated precision (mean score of its 'bad' labels) {estimate:.1%}, at least {floor:.0%}"
        f" (acceptance.yml's min_precision {bounds.min_precision:.0%} less the margin {policy.estimated_margin:.0%})",
        {"estimated": estimate, "min": floor},
    )


def _against_champion(policy: Canary, night: SliceNight) -> list[GateResult]:
    """Bad-share and score-PSI gaps to the champion on the same slice: gated between registered models, reported against the rule."""
    gaps = policy.against_champion
    canary_share, champion_share = _share(night.canary_bad), _share(night.champion_bad)
    gap = abs(canary_share - champion_share)
    distance = psi(night.champion_scores, night.canary_scores)
    if night.comparable:
        share_text = f" (gap {gap:.1%}, at most {gaps.max_bad_share_gap:.0%})"
        psi_text = f" (at most {gaps.max_score_psi:g})"
        who = "the champion's"
    else:
        share_text = "; reported only: a model is expected to label differently from the rule baseline"
        psi_text = "; reported only: the rule baseline's scores are on another scale"
        who = "the rule baseline's"
    return [
        GateResult(
            "canary_champion_bad_share", bool(gap <= gaps.max_bad_share_gap),
            f"bad share {canary_share:.1%} against {who} {champion_share:.1%} on the same slice{share_text}",
            {"canary": _figure(canary_share), "champion": _figure(champion_share), "gap": _figure(gap),
             "max": gaps.max_bad_share_gap},
            gated=night.comparable,
        ),
        GateResult(
            "canary_champion_score_psi", bool(distance <= gaps.max_score_psi),
            f"score PSI {distance:.3f} against {who} scores on the same slice{psi_text}",
            {"psi": _figure(distance), "max": gaps.max_score_psi},
            gated=night.comparable,
        ),
    ]


def against_champion_lines(checks: list[dict]) -> list[str]:
    """The comparisons with the champion among a canary night's checks (as_dict), for the run summary."""
    return [f"{check['reason']} ({check['verdict']})" for check in checks if check["name"] in AGAINST_CHAMPION]


def realized_check(policy: Canary, bounds: Performance, realized: Realized | None, comparable: bool = True) -> GateResult:
    """Realized precision on the canary's matured slice nights: at least min_precision, and, against a registered
    champion on the same customers, at most max_precision_drop below its."""
    if realized is None or not realized.customers or realized.canary_precision is None:
        return GateResult("canary_realized_precision", True, "no canary night's outcome window has matured yet", gated=False)
    figures = {"canary": realized.canary_precision, "champion": realized.champion_precision,
               "customers": realized.customers, "min": bounds.min_precision}
    text = (f"realized precision {realized.canary_precision:.1%} on {realized.customers:,} matured slice customers"
            f" (acceptance.yml's min_precision {bounds.min_precision:.0%})")
    passed = realized.canary_precision >= bounds.min_precision
    if realized.champion_precision is not None:
        drop = realized.champion_precision - realized.canary_precision
        who = "the champion's" if comparable else "the rule baseline's (reported)"
        text += f"; {who} {realized.champion_precision:.1%} on the same customers"
        if comparable:
            text += f" (drop at most {policy.max_precision_drop:.0%})"
            passed = passed and drop <= policy.max_precision_drop
    return GateResult("canary_realized_precision", passed, text, figures)


def scoring_failed(error: BaseException) -> GateResult:
    """The verdict of a night whose canary could not label its slice."""
    return GateResult("canary_scoring", False, f"the canary failed to label its slice: {type(error).__name__}: {error}"[:500])


def _frame(conn: psycopg.Connection, query: sql.Composable, params: list | None = None) -> pd.DataFrame:
    cursor = conn.execute(query, params)
    return pd.DataFrame(cursor.fetchall(), columns=[column.name for column in cursor.description])


def _slice(percent: float) -> sql.Composable:
    return sql.SQL("{} < {}").format(canary_slice.bucket_sql("customer_id"), sql.Literal(percent))


def shadow_labels(conn: psycopg.Connection, schema: str, champion: DeployedModel, as_of: date, percent: float) -> pd.DataFrame:
    """The champion's scores and labels of tonight's canary slice (customer_id, score, label)."""
    if champion.is_rule:
        # The night as a literal: the bucket's modulo sign would be read as a placeholder beside bound parameters.
        frame = _frame(conn, sql.SQL("select customer_id, score from {} where as_of_date = {} and {}").format(
            sql.Identifier(schema, champion.relation or rule_baseline.RELATION), sql.Literal(as_of), _slice(percent)))
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
        "label": threshold_cut.labels(scores, float(champion.threshold)) if len(scores) else [],
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
    return slice_night(settings, as_of, int(expected), published, shadow, canary_model, champion, seconds)


def slice_night(
    settings: Settings, as_of: date, expected: int, published: pd.DataFrame, shadow: pd.DataFrame,
    canary_model: DeployedModel, champion: DeployedModel, seconds: float,
) -> SliceNight:
    """A slice night from the canary's published labels and the champion's shadow labels (score, label each),
    whichever engine they were read from, with the canary's validation distribution from the registry."""
    return SliceNight(
        as_of_date=as_of,
        expected_rows=expected,
        canary_scores=published["score"].astype(float).to_numpy(),
        canary_bad=(published["label"] == "bad").to_numpy(),
        champion_scores=shadow["score"].astype(float).to_numpy(),
        champion_bad=(shadow["label"] == "bad").to_numpy(),
        seconds=seconds,
        comparable=not (canary_model.is_rule or champion.is_rule),
        validation=score_distribution.from_tags(registry.get_version(settings, str(canary_model.version)).tags),
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
