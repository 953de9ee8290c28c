"""In-warehouse scoring: the pipeline compiled to Postgres SQL by orbital, used only after a parity check.

The parity check scores a sample both ways: every SQL score within 1e-6 of the Python
score, and labels identical except for rows within 1e-6 of the threshold. Its result is
recorded as tags on the registered model version (`sql_parity` passed | failed), so a
version is checked once: when it is first scored. Anything that cannot be compiled or
run (unsupported steps, Postgres's 1,664-column limit, numeric overflow) falls back to
the Python engine with a log line, never an error. `--engine sql` and `auto` choose
alike; `sql` only logs its fallbacks as warnings, since the operator asked for SQL.

Scoring in SQL is one insert ... select: the compiled model joined to the reasons
(reasons.reasons_query), so no row leaves the database.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import psycopg
from mlflow import MlflowClient
from psycopg import sql

from custlabel.config import Settings
from custlabel.scoring import reasons, writeback
from custlabel.training import model_families, recalibration, threshold_cut
from custlabel.training.deployed_model import DeployedModel

logger = logging.getLogger(__name__)

MODEL_INPUT = "custlabel_model_input"
PARITY_TOLERANCE = 1e-6
PARITY_TAG = "sql_parity"
PARITY_DIFF_TAG = "sql_parity_max_abs_diff"
PARITY_DETAIL_TAG = "sql_parity_detail"
ENGINES = ("python", "sql", "auto")


@dataclass(frozen=True)
class Parity:
    passed: bool
    max_abs_diff: float | None
    rows: int
    detail: str


@dataclass(frozen=True)
class EngineChoice:
    engine: str
    compiled: str | None
    reason: str


def compile_model(model: Any, feature_columns: list[str], numeric: set[str]) -> str:
    """SQL selecting (customer_id, score) from MODEL_INPUT, score the probability of the second class.

    A recalibrated model compiles its pipeline and applies its Platt map to the probability.
    """
    # Imported here: orbital takes about 4 s to import and the Python engine never needs it.
    import orbital
    import orbital.types as types

    features: dict = {c: types.DoubleColumnType() if c in numeric else types.StringColumnType() for c in feature_columns}
    features["customer_id"] = types.StringColumnType(passthrough=True)
    pipeline = recalibration.uncalibrated(model)
    parsed = orbital.parse_pipeline(pipeline, features=features)
    compiled = orbital.export_sql(
        MODEL_INPUT, parsed, dialect="postgres", projection=orbital.ResultsProjection(select=["customer_id"])
    )
    probability = sql.SQL("compiled.{}").format(sql.Identifier(f"output_probability.{pipeline.classes_[1]}"))
    return (
        sql.SQL("select compiled.customer_id, {} as score from ({}) as compiled")
        .format(recalibration.probability_sql(model, probability), sql.SQL(compiled))
        .as_string(None)
    )


def point_model_input(conn: psycopg.Connection, query: sql.Composable) -> None:
    """(Re)define the temporary view the compiled SQL reads."""
    conn.execute(sql.SQL("drop view if exists pg_temp.{}").format(sql.Identifier(MODEL_INPUT)))
    conn.execute(sql.SQL("create temp view {} as {}").format(sql.Identifier(MODEL_INPUT), query))


def check_parity(
    conn: psycopg.Connection,
    compiled: str,
    sample_query: sql.Composable,
    sample: pd.DataFrame,
    python_scores: np.ndarray,
    threshold: float,
) -> Parity:
    """Score the sample in SQL and compare with the Python scores of the same rows."""
    try:
        with conn.transaction():
            point_model_input(conn, sample_query)
            rows = conn.execute(sql.SQL(compiled)).fetchall()
    except psycopg.Error as error:
        return Parity(False, None, 0, f"SQL failed in Postgres: {str(error).strip().splitlines()[0]}")
    sql_scores = pd.Series({cid: score for cid, score in rows}, dtype=float)
    python = pd.Series(python_scores, index=sample["customer_id"].to_numpy(), dtype=float)
    if len(sql_scores) != len(python) or not python.index.isin(sql_scores.index).all():
        return Parity(False, None, len(rows), f"SQL returned {len(rows)} rows for a sample of {len(python)}")
    sql_scores = sql_scores.reindex(python.index)
    if sql_scores.isna().any():
        return Parity(False, None, len(rows), f"SQL returned {int(sql_scores.isna().sum())} null scores")
    diff = np.abs(sql_scores.to_numpy() - python.to_numpy())
    max_diff = float(diff.max()) if len(diff) else 0.0
    flipped = threshold_cut.is_bad(sql_scores.to_numpy(), threshold) != threshold_cut.is_bad(python.to_numpy(), threshold)
    flipped &= np.abs(python.to_numpy() - threshold) > PARITY_TOLERANCE
    passed = max_diff <= PARITY_TOLERANCE and not flipped.any()
    detail = f"{len(diff)} rows, max |SQL - Python| {max_diff:.3g}, {int(flipped.sum())} labels differ"
    return Parity(passed, max_diff, len(diff), detail)


class ParityStore(Protocol):
    """Where parity results live, per model version."""

    def get(self, name: str, version: str) -> bool | None: ...

    def put(self, name: str, version: str, parity: Parity) -> None: ...


class MemoryParityStore:
    """Parity results kept in memory (benchmarks and stand-in models without a registry)."""

    def __init__(self) -> None:
        self.results: dict[tuple[str, str], Parity] = {}

    def get(self, name: str, version: str) -> bool | None:
        parity = self.results.get((name, str(version)))
        return None if parity is None else parity.passed

    def put(self, name: str, version: str, parity: Parity) -> None:
        self.results[(name, str(version))] = parity


class MlflowParityStore:
    """Parity results as tags on the registered model version (`sql_parity` = passed | failed)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _client(self) -> MlflowClient:
        uri = self.settings.mlflow_tracking_uri
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def get(self, name: str, version: str) -> bool | None:
        try:
            tags = self._client().get_model_version(name, str(version)).tags
        except Exception as error:  # noqa: BLE001 - no readable tag means "check now"
            logger.info("could not read the parity tag of %s v%s: %s", name, version, error)
            return None
        value = tags.get(PARITY_TAG)
        return None if value is None else value == "passed"

    def put(self, name: str, version: str, parity: Parity) -> None:
        tags = {
            PARITY_TAG: "passed" if parity.passed else "failed",
            PARITY_DIFF_TAG: "" if parity.max_abs_diff is None else repr(parity.max_abs_diff),
            PARITY_DETAIL_TAG: f"{parity.detail} (checked {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)"[:5000],
        }
        try:
            client = self._client()
            for key, value in tags.items():
                client.set_model_version_tag(name, str(version), key, value)
        except Exception as error:  # noqa: BLE001 - a missing registry must not stop the night
            logger.warning("could not record the SQL parity of %s v%s: %s", name, version, error)


def choose_engine(
    conn: psycopg.Connection,
    store: ParityStore,
    requested: str,
    model: DeployedModel,
    numeric: set[str],
    sample_query: sql.Composable,
    sample: pd.DataFrame,
) -> EngineChoice:
    """SQL when requested (sql or auto) and the version's SQL passed parity; Python otherwise, saying why."""
    if requested not in ENGINES:
        raise ValueError(f"unknown engine {requested!r}: expected one of {', '.join(ENGINES)}")
    if requested == "python":
        return EngineChoice("python", None, "requested")
    # An explicit --engine sql that cannot be honoured deserves a warning; auto just says what it picked.
    log = logger.warning if requested == "sql" else logger.info
    label, version = f"{model.name} v{model.version}", str(model.version)
    recorded = store.get(model.name, version)
    if recorded is False:
        log("scoring %s in Python: its SQL failed the parity check (recorded on the version)", label)
        return EngineChoice("python", None, "SQL parity failed: recorded on the version")
    obstacle = model_families.sql_obstacle(model.pipeline)
    if obstacle:
        store.put(model.name, version, Parity(False, None, 0, obstacle))
        log("scoring %s in Python: %s", label, obstacle)
        return EngineChoice("python", None, obstacle)
    try:
        compiled = compile_model(model.pipeline, list(model.feature_columns), numeric)
    except Exception as error:  # noqa: BLE001 - any translation failure means "use Python"
        reason = f"orbital cannot translate it ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
        store.put(model.name, version, Parity(False, None, 0, reason))
        log("scoring %s in Python: %s", label, reason)
        return EngineChoice("python", None, reason)
    if recorded is True:
        return EngineChoice("sql", compiled, "SQL parity passed: recorded on the version")
    features = list(model.feature_columns)
    python_scores = model.pipeline.predict_proba(sample[features])[:, 1]
    parity = check_parity(conn, compiled, sample_query, sample, python_scores, float(model.threshold))
    logger.info("SQL parity of %s: %s (%s)", label, "passed" if parity.passed else "failed", parity.detail)
    store.put(model.name, version, parity)
    if not parity.passed:
        log("scoring %s in Python: its SQL failed the parity check (%s)", label, parity.detail)
        return EngineChoice("python", None, f"SQL parity failed: {parity.detail}")
    return EngineChoice("sql", compiled, f"SQL parity passed: {parity.detail}")


def score_in_sql(
    conn: psycopg.Connection,
    schema: str,
    model: DeployedModel,
    explainer: reasons.ReasonModel,
    compiled: str,
    rows: sql.Composable,
) -> int:
    """Label the rows of a query inside Postgres: compiled model and reasons in one insert ... select."""
    point_model_input(conn, rows)
    scored = sql.SQL(
        "select i.customer_id, i.as_of_date, s.score, i.reason_1, i.reason_2, i.reason_3"
        " from ({explained}) as i join ({compiled}) as s on s.customer_id = i.customer_id"
    ).format(
        explained=reasons.reasons_query(explainer, sql.Identifier(MODEL_INPUT), ["customer_id", "as_of_date"]),
        compiled=sql.SQL(compiled),
    )
    return writeback.insert_labels(conn, schema, model.name, model.version, model.threshold, scored)
