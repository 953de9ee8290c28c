"""Scoring benchmark: scoring + write-back of N synthetic customers, both engines, against pandas to_sql.

Figures: wall time of `custlabel.scoring.score.score` (read features, score, reasons, write,
checks, swap), rows per second, and peak memory measured as `ru_maxrss` of a separate
scoring process (so it includes the interpreter and libraries, not Postgres's own
memory). The same label rows are then written with pandas `to_sql` and with our COPY
path in the same run, for the baseline ratio.

The synthetic features are a `customer_features` table built in SQL, so creating a
million rows does not go through Python; the scoring tests use them too (their own
helpers are in tests/helpers/).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import pickle
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql
from sklearn.base import ClassifierMixin
from sklearn.linear_model import LogisticRegression

from custlabel.config import Settings, get_settings
from custlabel.devtools.benchmarks import fresh_process
from custlabel.scoring import score, sql_scoring, writeback
from custlabel.training import threshold_cut
from custlabel.training.deployed_model import CHAMPION, DeployedModel
from custlabel.training.features import (
    CATEGORICAL_FEATURES,
    FEATURES,
    MODEL_FEATURES,
    NUMERIC_FEATURES,
)
from custlabel.training.model_families import build_pipeline
from custlabel.warehouse import db

BENCH_SCHEMA = "custlabel_benchmark"
# How each column is drawn: its YAML entry's config.meta.synthetic (values of a category; a
# number's draw, scale and whether some customers have none).
CATEGORIES = {
    feature.name: tuple(feature.synthetic["values"]) for feature in FEATURES if feature.kind in ("categorical", "sensitive")
}
DRAWS = {feature.name: feature.synthetic for feature in FEATURES if feature.kind == "numeric"}
TARGETS = {"seconds": 60.0, "memory_mb": 2048.0}
RULE_REASON = "no purchase in the last 90 days"


def _feature_sql(name: str) -> sql.Composable:
    draw = DRAWS[name]
    if draw["draw"] == "share":
        value = sql.SQL("random()")
    elif draw["draw"] == "trend":
        value = sql.SQL("random() * 2 - 1")
    else:
        value = sql.SQL("-ln(1 - random()) * {}").format(sql.Literal(float(draw["scale"])))
    if draw.get("nullable"):
        value = sql.SQL("case when random() < 0.08 then null else {} end").format(value)
    return sql.SQL("{} as {}").format(value, sql.Identifier(name))


def _category_sql(name: str, values: tuple[str, ...]) -> sql.Composable:
    return sql.SQL("(array[{}])[1 + floor(random() * {})::int] as {}").format(
        sql.SQL(", ").join(map(sql.Literal, values)), sql.Literal(len(values)), sql.Identifier(name)
    )


def create_synthetic_features(
    conn: psycopg.Connection, schema: str, customers: int, nights: list[dt.date], seed: float = 0.42, prefix: str = "C"
) -> None:
    """customer_features (one row per customer per night) and customer_features_current (the last night)."""
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    for table in ("customer_features_current", "customer_features"):
        conn.execute(sql.SQL("drop table if exists {} cascade").format(sql.Identifier(schema, table)))
    conn.execute("select setseed(%s)", [seed])
    conn.execute(
        sql.SQL(
            "create table {table} as select {prefix} || lpad(g::text, 9, '0') as customer_id, n.night as as_of_date,"
            " {features}, {categories}"
            " from unnest({nights}::date[]) as n (night) cross join generate_series(1, {customers}) as g"
        ).format(
            table=sql.Identifier(schema, "customer_features"),
            prefix=sql.Literal(prefix),
            features=sql.SQL(", ").join(_feature_sql(f) for f in NUMERIC_FEATURES),
            categories=sql.SQL(", ").join(_category_sql(name, values) for name, values in CATEGORIES.items()),
            nights=sql.Literal([n.isoformat() for n in nights]),
            customers=sql.Literal(customers),
        )
    )
    conn.execute(
        sql.SQL("create table {} as select * from {} where as_of_date = {}").format(
            sql.Identifier(schema, "customer_features_current"),
            sql.Identifier(schema, "customer_features"),
            sql.Literal(max(nights)),
        )
    )
    conn.execute(sql.SQL("analyze {}").format(sql.Identifier(schema, "customer_features_current")))


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
            label=threshold_cut.label_sql(sql.Identifier("points"), sql.Literal(0.5)),
            reason=sql.Literal(RULE_REASON),
            features=sql.Identifier(schema, "customer_features"),
        )
    )


def read_features(settings: Settings, schema: str, limit: int, table: str = "customer_features_current") -> pd.DataFrame:
    """A deterministic sample of feature rows, typed as the scorer types them."""
    with db.connect(settings) as conn:
        query = sql.SQL("select * from {} order by customer_id limit {}").format(
            sql.Identifier(schema, table), sql.Literal(limit)
        )
        rows = conn.execute(query)
        names = [c.name for c in rows.description]
        frame = pd.DataFrame(rows.fetchall(), columns=names)
    frame[NUMERIC_FEATURES] = frame[NUMERIC_FEATURES].astype("float64")
    for column in CATEGORICAL_FEATURES:
        frame[column] = frame[column].astype("str")
    return frame


def synthetic_outcome(frame: pd.DataFrame, seed: int = 7) -> np.ndarray:
    """A 'bad' flag drawn from a known logistic rule of the features."""
    z = (
        -4.5
        + 0.004 * frame["days_since_last_sale"].fillna(600).to_numpy()
        + 0.35 * frame["overdue_invoices_count"].to_numpy()
        + 2.0 * frame["return_rate_365d"].to_numpy()
        - 0.15 * frame["sales_count_90d"].to_numpy()
        + 0.6 * (frame["segment"] == "online").to_numpy()
    )
    return (np.random.default_rng(seed).random(len(frame)) < 1 / (1 + np.exp(-z))).astype(int)


def fit_stand_in(
    frame: pd.DataFrame, estimator: ClassifierMixin, name: str = "bench", version: str = "1", threshold: float = 0.5
) -> DeployedModel:
    """A stand-in model: the training pipeline around estimator, fitted on synthetic outcomes."""
    pipeline = build_pipeline(estimator)
    pipeline.fit(frame[MODEL_FEATURES], synthetic_outcome(frame))
    return DeployedModel(name, version, CHAMPION, threshold, pipeline, list(MODEL_FEATURES))


def _score_child(job: Path) -> dict:
    """In the child process: score once from a pickled (settings, model, engine), report time and peak RSS."""
    settings, model, engine = pickle.loads(job.read_bytes())
    started = time.perf_counter()
    summary = score.score(
        settings,
        score.ScoreRequest(BENCH_SCHEMA, engine=engine, force=True),
        score.GivenModels({CHAMPION: model}),
        sql_scoring.MemoryParityStore(),
    )
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, "engine": summary.slices[0].engine, "rows": summary.customers}


def measure_score(settings: Settings, model: DeployedModel, engine: str) -> dict:
    """Run one scoring in a fresh process: wall time, peak RSS, and the engine actually used."""
    return fresh_process.run("custlabel.devtools.benchmarks.scoring", (settings, model, engine), f"{engine} scoring")


def _read_labels(settings: Settings) -> pd.DataFrame:
    with db.connect(settings) as conn:
        columns = [c for c, _, _ in writeback.COLUMNS]
        query = sql.SQL("select {} from {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(BENCH_SCHEMA, writeback.LABELS)
        )
        with conn.cursor().copy(sql.SQL("copy ({}) to stdout (format csv)").format(query)) as copy:
            data = b"".join(bytes(block) for block in copy)
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=columns),
        convert_options=pacsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=False),
    )
    return table.to_pandas()


def measure_writes(settings: Settings, labels: pd.DataFrame) -> dict:
    """Write the same label rows with pandas to_sql and with COPY (as the scorer does); seconds each."""
    to_sql_table, copy_table = "labels_to_sql", "labels_copy"
    with db.connect(settings, autocommit=True) as conn:
        for table in (to_sql_table, copy_table):
            conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(BENCH_SCHEMA, table)))
        conn.execute(
            sql.SQL("create table {} (like {})").format(
                sql.Identifier(BENCH_SCHEMA, copy_table), sql.Identifier(BENCH_SCHEMA, writeback.LABELS)
            )
        )
    started = time.perf_counter()
    labels.to_sql(to_sql_table, db.engine(settings), schema=BENCH_SCHEMA, index=False, chunksize=10_000)
    to_sql_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with db.connect(settings) as conn, conn.cursor().copy(
        sql.SQL("copy {} from stdin (format csv)").format(sql.Identifier(BENCH_SCHEMA, copy_table))
    ) as copy:
        options = pacsv.WriteOptions(include_header=False)
        for start in range(0, len(labels), 100_000):
            buffer = io.BytesIO()
            pacsv.write_csv(pa.Table.from_pandas(labels.iloc[start : start + 100_000], preserve_index=False), buffer, write_options=options)
            copy.write(buffer.getbuffer())
    copy_seconds = time.perf_counter() - started
    return {"to_sql": to_sql_seconds, "copy": copy_seconds}


def run(settings: Settings, customers: int) -> list[str]:
    """Benchmark scoring and write-back at `customers` synthetic customers; one line per figure."""
    lines = [f"scoring benchmark: {customers:,} synthetic customers in schema {BENCH_SCHEMA}, {os.cpu_count()} CPU cores"]
    started = time.perf_counter()
    with db.connect(settings) as conn:
        create_synthetic_features(conn, BENCH_SCHEMA, customers, [dt.date.today()])
    lines.append(f"  synthetic features built in SQL in {time.perf_counter() - started:.1f} s (not counted)")
    model = fit_stand_in(read_features(settings, BENCH_SCHEMA, 20_000), LogisticRegression(max_iter=1000), name="benchmark-logreg")
    lines.append("  model: logistic regression (median imputer, scaler, one-hot segment), reasons exact-linear")
    figures = {}
    for engine in ("python", "sql"):
        figures[engine] = result = measure_score(settings, model, engine)
        met = result["seconds"] < TARGETS["seconds"] and result["peak_mb"] < TARGETS["memory_mb"]
        lines.append(
            f"  {engine:>6} engine (used: {result['engine']}): {result['seconds']:6.1f} s wall score + write-back,"
            f" {result['rows'] / result['seconds']:>9,.0f} rows/s, peak RSS {result['peak_mb']:,.0f} MB"
            f" (ru_maxrss of the scoring process)  targets <60 s, <2 GB: {'met' if met else 'MISSED'}"
        )
    writes = measure_writes(settings, _read_labels(settings))
    lines.append(
        f"  write of the same {customers:,} label rows: pandas to_sql {writes['to_sql']:.1f} s, COPY {writes['copy']:.1f} s"
        f" ({writes['to_sql'] / writes['copy']:.1f}x); to_sql alone is {writes['to_sql'] / figures['python']['seconds']:.1f}x"
        " the whole python-engine scoring run"
    )
    with db.connect(settings) as conn:
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(BENCH_SCHEMA)))
    return lines


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_score_child(Path(sys.argv[2]))))
    else:
        print("\n".join(run(get_settings(), int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
