"""Reference distributions of a model version's training rows, stored for the nightly drift marts.

When a version is registered, every feature of its training rows is cut into bins:
numeric features at the deciles of the training values (equal edges merged), a
categorical feature at each value seen, and one bin for nulls. The counts per bin go
to `<schema>_monitoring.model_reference_bins`; the dbt mart `feature_drift` bins each
night's customers with the same edges and computes the PSI against these shares.

Bin numbers: 0 holds nulls; numeric bin i (1..m+1) holds values in
[edge i-1, edge i) with edges e1 < ... < em, which is Postgres's
`width_bucket(value, edges) + 1`; categorical bin i is the i-th value in sort order.
Sensitive attributes (country, gender, age_band) get bins too, for population
shift only: they are read from customer_features at the training nights when the
frame does not carry them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from custlabel.config import Settings, monitoring_schema
from custlabel.errors import CustlabelError
from custlabel.training.features import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    SENSITIVE_ATTRIBUTES,
)
from custlabel.warehouse import db

TABLE = "model_reference_bins"
QUANTILES = np.linspace(0.1, 0.9, 9)
NULL_BIN = 0

DDL = """
create schema if not exists {schema};
create table if not exists {table} (
    model_name text not null,
    model_version text not null,
    feature text not null,
    kind text not null check (kind in ('numeric', 'categorical', 'sensitive')),
    bin integer not null,
    lower_edge double precision,
    upper_edge double precision,
    category text,
    reference_rows bigint not null,
    reference_share double precision not null,
    stored_at timestamptz not null default now(),
    primary key (model_name, model_version, feature, bin)
);
comment on table {table} is 'One row per model version, feature and bin: the share of the version''s training rows in the bin (bin 0: nulls). Written when the version is registered; read by the drift marts.'
"""


class ReferenceError(CustlabelError):
    """The training rows cannot give a reference distribution."""


@dataclass(frozen=True)
class Bin:
    """One bin of one feature's reference distribution."""

    feature: str
    kind: str
    bin: int
    lower_edge: float | None
    upper_edge: float | None
    category: str | None
    reference_rows: int
    reference_share: float


def numeric_edges(values: pd.Series) -> np.ndarray:
    """Inner bin edges: the deciles of the non-null values, equal ones merged."""
    present = values.dropna().to_numpy(dtype=float)
    if present.size == 0:
        return np.array([])
    return np.unique(np.quantile(present, QUANTILES))


def numeric_bins(feature: str, values: pd.Series) -> list[Bin]:
    """Null bin and decile bins of a numeric feature (the null bin even when empty)."""
    edges = numeric_edges(values)
    present = values.dropna().to_numpy(dtype=float)
    numbers = np.searchsorted(edges, present, side="right") + 1
    counts = np.bincount(numbers, minlength=edges.size + 2)
    counts[NULL_BIN] = int(values.isna().sum())
    total = len(values)
    bins = []
    for number, rows in enumerate(counts):
        lower = None if number <= 1 else float(edges[number - 2])
        upper = None if number == 0 or number > edges.size else float(edges[number - 1])
        bins.append(Bin(feature, "numeric", number, lower, upper, None, int(rows), rows / total))
    return bins


def categorical_bins(feature: str, values: pd.Series, kind: str = "categorical") -> list[Bin]:
    """Null bin and one bin per value seen, in sort order."""
    total = len(values)
    counts = values.dropna().astype(str).value_counts().sort_index()
    nulls = int(values.isna().sum())
    bins = [Bin(feature, kind, NULL_BIN, None, None, None, nulls, nulls / total)]
    for number, (category, rows) in enumerate(counts.items(), start=1):
        bins.append(Bin(feature, kind, number, None, None, str(category), int(rows), rows / total))
    return bins


def reference_bins(frame: pd.DataFrame, sensitive: pd.DataFrame | None = None) -> list[Bin]:
    """Bins of every model feature of the training rows, and of the sensitive attributes."""
    if frame.empty:
        raise ReferenceError("the training rows are empty: no reference distribution to store")
    missing = [c for c in NUMERIC_FEATURES + CATEGORICAL_FEATURES if c not in frame.columns]
    if missing:
        raise ReferenceError(f"the training rows lack the feature columns {', '.join(missing)}")
    bins = [b for c in NUMERIC_FEATURES for b in numeric_bins(c, pd.to_numeric(frame[c], errors="coerce"))]
    bins += [b for c in CATEGORICAL_FEATURES for b in categorical_bins(c, frame[c])]
    population = frame if sensitive is None else sensitive
    bins += [
        b for c in SENSITIVE_ATTRIBUTES if c in population.columns
        for b in categorical_bins(c, population[c], kind="sensitive")
    ]
    return bins


def _sensitive_population(settings: Settings, nights: Iterable) -> pd.DataFrame | None:
    """Sensitive attributes of every customer_features row at the training nights (None without the mart)."""
    columns = sql.SQL(", ").join(map(sql.Identifier, SENSITIVE_ATTRIBUTES))
    query = sql.SQL("select {} from {} where as_of_date = any(%(nights)s)").format(
        columns, sql.Identifier(settings.schema, "customer_features")
    )
    with db.connect(settings) as conn:
        if not db.relation_exists(conn, settings.schema, "customer_features"):
            return None
        cursor = conn.execute(query, {"nights": sorted(set(nights))})
        return pd.DataFrame(cursor.fetchall(), columns=SENSITIVE_ATTRIBUTES)


def ensure_table(conn: psycopg.Connection, schema: str) -> sql.Identifier:
    """Create the reference table in the monitoring schema when missing."""
    monitoring = monitoring_schema(schema)
    table = sql.Identifier(monitoring, TABLE)
    conn.execute(sql.SQL(DDL).format(schema=sql.Identifier(monitoring), table=table))
    return table


def store(settings: Settings, model_name: str, model_version: str, frame: pd.DataFrame) -> int:
    """Store the reference bins of a version's training rows (replacing any earlier ones); returns the bins stored.

    Args:
        frame: the training rows (model features; `as_of_date` too, to read the
            sensitive attributes of the same nights when the frame lacks them).
    """
    sensitive = None
    if not set(SENSITIVE_ATTRIBUTES) <= set(frame.columns) and "as_of_date" in frame.columns:
        sensitive = _sensitive_population(settings, frame["as_of_date"])
    bins = reference_bins(frame, sensitive)
    with db.connect(settings) as conn:
        table = ensure_table(conn, settings.schema)
        conn.execute(
            sql.SQL("delete from {} where model_name = %s and model_version = %s").format(table),
            [model_name, str(model_version)],
        )
        columns = ["model_name", "model_version", *Bin.__dataclass_fields__]
        copy_sql = sql.SQL("copy {} ({}) from stdin").format(table, sql.SQL(", ").join(map(sql.Identifier, columns)))
        with conn.cursor().copy(copy_sql) as copy:
            for b in bins:
                copy.write_row([model_name, str(model_version), b.feature, b.kind, b.bin, b.lower_edge,
                                b.upper_edge, b.category, b.reference_rows, b.reference_share])
    return len(bins)

