"""Nightly scoring: tonight's features → the model behind an alias (or the rule baseline) → customer_labels.

Rows come from `customer_features_current` (or `customer_features` at --as-of). Each
slice of customers (the canary slice and the rest) is labelled by one scorer:
- the rule baseline: `rule_baseline_scores`, copied inside the warehouse;
- a registered model, in SQL (orbital, after parity) or in Python, streamed in chunks:
  COPY out as CSV → Arrow batches → predict_proba → COPY in, so memory does not grow
  with the number of customers.
Everything lands in a staging table that is checked and swapped in one transaction
(see writeback).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.scoring import canary_slice, reasons, sql_scoring, writeback
from custlabel.training import acceptance, registry, rule_baseline, threshold_cut
from custlabel.training.deployed_model import (
    CANARY,
    CHALLENGER,
    CHAMPION,
    DeployedModel,
    model_label,
)
from custlabel.training.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from custlabel.warehouse import db, locking, retry

logger = logging.getLogger(__name__)

INPUT_VIEW = "custlabel_score_input"
CURRENT_FEATURES, FEATURE_HISTORY = "customer_features_current", "customer_features"
SAMPLE_ROWS = 5_000
# About 14k feature rows per Arrow batch: measured fastest and smallest at 1M customers (peak RSS ~380 MB).
BLOCK_BYTES = 2 << 20


@dataclass(frozen=True)
class ScoreRequest:
    """One scoring: where it reads and writes, which night, which models label which slice, the publish check.

    Args:
        schema: the schema whose features are read and whose customer_labels is written.
        as_of: None reads tonight's rows of customer_features_current (the nightly run);
            a date reads customer_features at that night (an ad-hoc re-score).
        expected_as_of: the night the rows must be of (the nightly run checks dbt built its night).
        force: publish even when the bad rate moved more than max_label_rate_change.
        max_bad_share: the largest share of customers that may be labelled bad, checked every
            night, the first one included; --force does not waive it. The nightly run and
            `custlabel score` pass performance.max_bad_share of acceptance.yml (`acceptance_bound`).
    """

    schema: str
    as_of: dt.date | None = None
    expected_as_of: dt.date | None = None
    alias: str = CHAMPION
    engine: str = "auto"
    canary_percent: float = 0.0
    canary_alias: str = CHALLENGER
    force: bool = False
    max_label_rate_change: float = writeback.DEFAULT_MAX_LABEL_RATE_CHANGE
    max_bad_share: float = 1.0

    def __post_init__(self) -> None:
        if self.engine not in sql_scoring.ENGINES:
            raise CustlabelError(f"unknown engine {self.engine!r}: expected one of {', '.join(sql_scoring.ENGINES)}")
        canary_slice.validate_percent(self.canary_percent)

    @property
    def relation(self) -> str:
        """The feature mart the request reads."""
        return CURRENT_FEATURES if self.as_of is None else FEATURE_HISTORY


def acceptance_bound(settings: Settings) -> float:
    """The business's cap on the share of customers labelled bad (performance.max_bad_share of acceptance.yml)."""
    return acceptance.load(settings=settings).performance.max_bad_share


class ModelSource(Protocol):
    """Where scoring finds its models: the version behind an alias, and the rule baseline."""

    def model(self, alias: str) -> DeployedModel | None: ...

    def rule(self) -> DeployedModel: ...


class RegisteredModels:
    """The models of the MLflow registry."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def model(self, alias: str) -> DeployedModel | None:
        """The registered version behind an alias; None when the alias is unset or nothing is registered yet."""
        try:
            return registry.load_alias(self.settings, alias)
        except registry.NoModelRegisteredError:
            return None

    def rule(self) -> DeployedModel:
        """The rule baseline's registered version (alias `fallback`), or the unregistered rule."""
        try:
            return registry.load_fallback(self.settings, rule_baseline.RULE) or rule_baseline.RULE
        except Exception as error:  # noqa: BLE001 - the rule's labels do not depend on the registry
            logger.warning("could not read the rule baseline's version from the registry: %s", error)
            return rule_baseline.RULE


class GivenModels:
    """Models given by alias, without a registry (tests, benchmarks); the rule baseline unregistered."""

    def __init__(self, by_alias: dict[str, DeployedModel] | None = None) -> None:
        self.by_alias = by_alias or {}

    def model(self, alias: str) -> DeployedModel | None:
        return self.by_alias.get(alias)

    def rule(self) -> DeployedModel:
        return rule_baseline.RULE


@dataclass(frozen=True)
class SliceResult:
    model_name: str
    model_version: str
    role: str
    engine: str
    rows: int
    reasons: str
    engine_reason: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class ScoreSummary:
    schema: str
    as_of_date: dt.date
    customers: int
    bad_rate: float
    slices: list[SliceResult] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [
            f"labelled {self.customers:,} customers as of {self.as_of_date} in {self.seconds:.1f} s;"
            f" bad rate {self.bad_rate:.1%}",
        ]
        for part in self.slices:
            fallback = f" ({part.engine_reason})" if part.engine == "python" and part.engine_reason != "requested" else ""
            lines.append(
                f"  {part.role}: {model_label(part.model_name, part.model_version)}, {part.rows:,} rows,"
                f" {part.engine} engine{fallback}, reasons by {part.reasons}"
            )
        lines.append(f"query: select * from {self.schema}.{writeback.LABELS}")
        return "\n".join(lines)


class CanaryScoringError(CustlabelError):
    """The canary could not label its slice (the champion's slice and the publish are not to blame)."""


class ChampionScoringError(CustlabelError):
    """The champion loaded but could not label the customers (the nightly run falls back, loudly)."""


class ProdAliasError(CustlabelError):
    """A model other than the champion (or the approved canary on its slice) asked to label prod customers."""


def check_prod_aliases(settings: Settings, request: ScoreRequest) -> None:
    """Prod customers are labelled by the champion, and an approved canary on its slice; no other alias."""
    if settings.target != registry.PROD:
        return
    if request.alias != CHAMPION:
        raise ProdAliasError(
            f"--alias {request.alias} would label every prod customer: only the champion labels prod. Score it into "
            f"the test target (--target test), or take it through `custlabel validate`, `custlabel approve` and its canary"
        )
    if request.canary_percent > 0 and request.canary_alias != CANARY:
        raise ProdAliasError(
            f"--canary-alias {request.canary_alias} would label a prod slice: only an approved canary does, started by "
            "the nightly run after `custlabel approve` (use --canary-alias canary, or --target test)"
        )


class Interrupted(CustlabelError):
    """The run was stopped by a signal before it published."""


class _Stop(SystemExit):
    """Raised from the SIGTERM handler: psycopg cancels the running query on SystemExit."""


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into a clean stop: the query is cancelled, the transaction rolled back, the reason told."""

    def _raise(signum: int, _frame: Any) -> None:
        raise _Stop(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    except _Stop as stop:
        raise Interrupted(f"{stop.code}; nothing was published") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def source_query(request: ScoreRequest) -> sql.Composable:
    """The request's eligible rows, each with its canary bucket."""
    where = sql.SQL("")
    if request.as_of is not None:
        where = sql.SQL(" where f.as_of_date = {}").format(sql.Literal(request.as_of))
    return sql.SQL("select f.*, {} as canary_bucket from {} as f{}").format(
        canary_slice.bucket_sql("customer_id"), sql.Identifier(request.schema, request.relation), where
    )


def _open_input(conn: psycopg.Connection, request: ScoreRequest) -> None:
    if not db.relation_exists(conn, request.schema, request.relation):
        raise CustlabelError(
            f"{request.schema}.{request.relation} does not exist: run `custlabel dbt build` for this target first"
        )
    conn.execute(sql.SQL("create or replace temp view {} as {}").format(sql.Identifier(INPUT_VIEW), source_query(request)))


def _arrow_types(columns: list[str], numeric: set[str]) -> dict[str, pa.DataType]:
    types: dict[str, pa.DataType] = {"customer_id": pa.string(), "as_of_date": pa.date32(), "canary_bucket": pa.int64()}
    types.update({c: pa.float64() if c in numeric else pa.string() for c in columns})
    return types


class _CopyStream(io.RawIOBase):
    """A readable file over the blocks of a COPY ... TO STDOUT."""

    def __init__(self, copy: psycopg.Copy) -> None:
        self._copy, self._pending = copy, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            block = self._copy.read()
            if not block:
                return 0
            self._pending = memoryview(block)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def stream_batches(
    conn: psycopg.Connection, query: sql.Composable, columns: list[str], types: dict[str, pa.DataType]
) -> Iterator[pa.RecordBatch]:
    """COPY a query out as CSV and parse it into Arrow batches of about BLOCK_BYTES each."""
    statement = sql.SQL("copy ({}) to stdout (format csv)").format(query)
    with conn.cursor().copy(statement) as copy:
        reader = pacsv.open_csv(
            io.BufferedReader(_CopyStream(copy), buffer_size=1 << 20),
            read_options=pacsv.ReadOptions(column_names=columns, block_size=BLOCK_BYTES, use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False
            ),
        )
        yield from reader


def _select(columns: list[str], where: sql.Composable | None, tail: sql.Composable | None = None) -> sql.Composable:
    return sql.SQL("select {} from {}{}{}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.Identifier(INPUT_VIEW),
        sql.SQL(" where {}").format(where) if where is not None else sql.SQL(""),
        tail or sql.SQL(""),
    )


def _sample_query(columns: list[str]) -> sql.Composable:
    return _select(["customer_id", *columns], None, sql.SQL(" order by md5(customer_id) limit {}").format(sql.Literal(SAMPLE_ROWS)))


def _read_frame(conn: psycopg.Connection, query: sql.Composable, columns: list[str], numeric: set[str]) -> pd.DataFrame:
    types = _arrow_types(columns, numeric)
    batches = list(stream_batches(conn, query, columns, {c: types[c] for c in columns}))
    schema = pa.schema([(c, types[c]) for c in columns])
    return pa.Table.from_batches(batches, schema=schema).to_pandas()


def numeric_columns(feature_columns: list[str]) -> set[str]:
    return {c for c in feature_columns if c in NUMERIC_FEATURES or c not in CATEGORICAL_FEATURES}


def label_batch(model: DeployedModel, explainer: reasons.ReasonModel, batch: pa.RecordBatch) -> pa.Table:
    features = batch.select(list(model.feature_columns)).to_pandas()
    scores = model.scores(features)
    threshold = float(model.threshold)
    first, second, third = reasons.top_reasons(explainer, features)
    rows = len(scores)
    return pa.table(
        {
            "customer_id": batch.column("customer_id"),
            "label": pa.array(threshold_cut.labels(scores, threshold)),
            "score": pa.array(scores),
            "threshold": pa.array(np.full(rows, threshold)),
            "model_name": pa.array([model.name] * rows, pa.string()),
            "model_version": pa.array([str(model.version)] * rows, pa.string()),
            "as_of_date": batch.column("as_of_date"),
            "reason_1": pa.array(first, pa.string()),
            "reason_2": pa.array(second, pa.string()),
            "reason_3": pa.array(third, pa.string()),
        }
    )


def score_in_python(
    reader: psycopg.Connection,
    writer: psycopg.Connection,
    schema: str,
    model: DeployedModel,
    explainer: reasons.ReasonModel,
    where: sql.Composable | None,
) -> int:
    """Stream a slice out of the warehouse, label it chunk by chunk and COPY it into staging."""
    feature_columns = list(model.feature_columns)
    columns = ["customer_id", "as_of_date", *feature_columns]
    types = _arrow_types(feature_columns, numeric_columns(feature_columns))
    rows = 0
    options = pacsv.WriteOptions(include_header=False)
    with writeback.copy_into_staging(writer, schema) as copy:
        for batch in stream_batches(reader, _select(columns, where), columns, {c: types[c] for c in columns}):
            buffer = io.BytesIO()
            pacsv.write_csv(label_batch(model, explainer, batch), buffer, write_options=options)
            copy.write(buffer.getbuffer())
            rows += batch.num_rows
    return rows


def _select_all(where: sql.Composable | None) -> sql.Composable:
    return sql.SQL("select * from {}{}").format(
        sql.Identifier(INPUT_VIEW), sql.SQL(" where {}").format(where) if where is not None else sql.SQL("")
    )


def score_rule_baseline(conn: psycopg.Connection, schema: str, rule: DeployedModel, where: sql.Composable | None) -> int:
    """Label tonight's rows of the slice by the rule's scores (copied inside the warehouse) into staging."""
    relation = rule.relation or rule_baseline.RELATION
    if not db.relation_exists(conn, schema, relation):
        raise CustlabelError(
            f"no model to score with: no champion in the registry and no {schema}.{relation};"
            " run `custlabel dbt build` first"
        )
    scored = sql.SQL(
        "select r.customer_id, r.as_of_date, r.score, r.reason_1, r.reason_2, r.reason_3"
        " from ({input}) as i join {rules} as r on r.customer_id = i.customer_id and r.as_of_date = i.as_of_date"
    ).format(input=_select_all(where), rules=sql.Identifier(schema, relation))
    return writeback.insert_labels(conn, schema, rule.name, rule.version, rule.threshold, scored)


def _slices(
    champion: DeployedModel | None, challenger: DeployedModel | None, percent: float
) -> list[tuple[str, DeployedModel | None, sql.Composable | None]]:
    if challenger is None or percent <= 0:
        return [("champion", champion, None)]
    bucket = sql.Identifier("canary_bucket")
    if percent >= 100:
        return [("canary", challenger, None)]
    return [
        ("canary", challenger, sql.SQL("{} < {}").format(bucket, sql.Literal(percent))),
        ("champion", champion, sql.SQL("{} >= {}").format(bucket, sql.Literal(percent))),
    ]


def _eligible(conn: psycopg.Connection, request: ScoreRequest) -> tuple[int, dt.date]:
    count, nights, as_of_date = conn.execute(
        sql.SQL("select count(*), count(distinct as_of_date), max(as_of_date) from {}").format(sql.Identifier(INPUT_VIEW))
    ).fetchone()
    if count == 0:
        raise writeback.WriteBackError("no eligible customers tonight: refusing to publish an empty label table")
    if nights != 1:
        raise writeback.WriteBackError(f"the feature rows span {nights} as-of dates instead of one")
    if request.expected_as_of is not None and as_of_date != request.expected_as_of:
        raise writeback.WriteBackError(
            f"{request.schema}.{request.relation} holds the night {as_of_date}, not {request.expected_as_of}:"
            f" run `custlabel dbt build` for {request.expected_as_of} first"
        )
    return count, as_of_date


def _score_model_slice(
    conn: psycopg.Connection,
    settings: Settings,
    store: sql_scoring.ParityStore,
    request: ScoreRequest,
    role: str,
    model: DeployedModel,
    where: sql.Composable | None,
) -> SliceResult:
    schema = request.schema
    feature_columns = list(model.feature_columns)
    numeric = numeric_columns(feature_columns)
    sample_query = _sample_query(feature_columns)
    sample = _read_frame(conn, sample_query, ["customer_id", *feature_columns], numeric)
    explainer = reasons.build_reason_model(model.pipeline, feature_columns, sample[feature_columns])
    choice = sql_scoring.EngineChoice("python", None, "requested")
    if request.engine != "python":
        choice = sql_scoring.choose_engine(conn, store, request.engine, model, numeric, sample_query, sample)
    rows = None
    if choice.engine == "sql":
        try:
            with conn.transaction():
                rows = sql_scoring.score_in_sql(conn, schema, model, explainer, choice.compiled, _select_all(where))
        except psycopg.Error as error:
            reason = f"SQL failed in Postgres: {str(error).strip().splitlines()[0]}"
            logger.warning("scoring %s v%s in Python: %s", model.name, model.version, reason)
            choice = sql_scoring.EngineChoice("python", None, reason)
    if rows is None:
        with db.connect(settings) as reader:
            _open_input(reader, request)
            rows = score_in_python(reader, conn, schema, model, explainer, where)
    return SliceResult(model.name, str(model.version), role, choice.engine, rows, explainer.method, choice.reason)


def score(
    settings: Settings,
    request: ScoreRequest,
    models: ModelSource | None = None,
    parity_store: sql_scoring.ParityStore | None = None,
) -> ScoreSummary:
    """Label every eligible customer and publish customer_labels and tonight's history rows atomically.

    Args:
        models, parity_store: where models and SQL-parity results come from (default: the
            registry; tests and benchmarks give stand-ins).
    """
    if models is None:
        check_prod_aliases(settings, request)
        models = RegisteredModels(settings)
    store = parity_store or sql_scoring.MlflowParityStore(settings)
    schema = request.schema
    champion = models.model(request.alias)
    challenger = models.model(request.canary_alias) if request.canary_percent > 0 else None
    if request.canary_percent > 0 and challenger is None:
        raise CustlabelError(
            f"--canary-percent {request.canary_percent:g} needs a model behind the alias {request.canary_alias!r}"
        )
    started = time.perf_counter()
    try:
        with db.connect(settings) as conn:
            writeback.begin_night(conn, schema)
            _open_input(conn, request)
            expected, night = _eligible(conn, request)
            results = []
            for role, model, where in _slices(champion, challenger, request.canary_percent):
                clock = time.perf_counter()
                try:
                    if model is None or model.is_rule:
                        rule = model or models.rule()
                        rows = score_rule_baseline(conn, schema, rule, where)
                        part = SliceResult(rule.name, rule.version, role, "sql", rows, "the rule")
                    else:
                        part = _score_model_slice(conn, settings, store, request, role, model, where)
                except Exception as error:
                    if role == "canary":
                        raise CanaryScoringError(f"the canary v{model.version} failed to label its slice: {error}") from error
                    if model is not None and not model.is_rule and not retry.is_transient(error):
                        raise ChampionScoringError(f"{model.name} v{model.version} failed to label its customers: "
                                                   f"{type(error).__name__}: {error}") from error
                    raise
                results.append(replace(part, seconds=time.perf_counter() - clock))
            check = writeback.check_staging(
                conn, schema, expected, night, request.max_label_rate_change, request.force, request.max_bad_share
            )
            locking.check_held()  # a nightly run that lost its lock never swaps
            writeback.publish(conn, schema, night, settings.swap_wait)
    except BaseException as error:
        logger.error("scoring failed before publishing (%s); %s.%s is unchanged", error, schema, writeback.LABELS)
        raise
    return ScoreSummary(schema, night, check.rows, check.bad_rate, results, time.perf_counter() - started)
