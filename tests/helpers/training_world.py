"""A contract-shaped training_set and rule_baseline_scores whose signal the test chooses, for the release gates.

Each customer has a hidden risk; `is_bad` is the top `base_rate` of the risk plus a
little noise. The model sees the risk through one feature (`days_since_last_sale`)
blurred by `model_noise`; the rule sees it blurred by `rule_noise` and labels the
top `rule_share` bad. Every other feature is noise.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from psycopg import sql

from custlabel.config import Settings
from custlabel.training import threshold_cut
from custlabel.training.features import NUMERIC_FEATURES
from custlabel.warehouse import db

NIGHTS = [date(2025 + (month - 1) // 12, (month - 1) % 12 + 1, 1) for month in range(1, 14)]
WINDOW_DAYS = 90
SIGNAL = "days_since_last_sale"


@dataclass(frozen=True)
class World:
    customers: int = 500
    base_rate: float = 0.3
    model_noise: float = 0.3
    rule_noise: float = 1.0
    rule_share: float = 0.3
    seed: int = 0


def _frames(world: World) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(world.seed)
    parts, rules = [], []
    for night in NIGHTS:
        n = world.customers
        risk = rng.normal(size=n)
        latent = risk + rng.normal(scale=0.3, size=n)
        features = pd.DataFrame(rng.normal(size=(n, len(NUMERIC_FEATURES))), columns=NUMERIC_FEATURES)
        features[SIGNAL] = risk + rng.normal(scale=world.model_noise, size=n)
        seen = risk + rng.normal(scale=world.rule_noise, size=n)
        rule_score = 1 / (1 + np.exp(-4 * (seen - np.quantile(seen, 1 - world.rule_share))))
        keys = pd.DataFrame({"customer_id": [f"C{i:05d}" for i in range(n)], "as_of_date": night})
        parts.append(
            pd.concat([keys, features], axis=1).assign(
                segment="retail", country="IT", gender="F", age_band="35-44",
                window_end=night + timedelta(days=WINDOW_DAYS), net_paid_revenue=0.0, unpaid_invoices_count=0,
                is_bad=(latent > np.quantile(latent, 1 - world.base_rate)).astype(int),
            )
        )
        rules.append(keys.assign(score=rule_score, label=threshold_cut.labels(rule_score, 0.5)))
    return pd.concat(parts, ignore_index=True), pd.concat(rules, ignore_index=True)


def _copy(conn, table: sql.Identifier, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    columns = sql.SQL(", ").join(map(sql.Identifier, frame.columns))
    with conn.cursor().copy(sql.SQL("copy {} ({}) from stdin (format csv)").format(table, columns)) as copy:
        copy.write(buffer.getvalue())


def create(settings: Settings, world: World) -> None:
    """Write the world's training_set and rule_baseline_scores into the settings' target schema (replacing them)."""
    training, rules = _frames(world)
    schema = settings.schema
    numeric = sql.SQL(", ").join(sql.SQL("{} double precision").format(sql.Identifier(c)) for c in NUMERIC_FEATURES)
    with db.connect(settings, autocommit=True) as conn:
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        for table in ("training_set", "rule_baseline_scores"):
            conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(schema, table)))
        conn.execute(
            sql.SQL(
                "create table {} (customer_id text, as_of_date date, {}, segment text, country text, gender text,"
                " age_band text, window_end date, net_paid_revenue double precision, unpaid_invoices_count integer,"
                " is_bad integer)"
            ).format(sql.Identifier(schema, "training_set"), numeric)
        )
        conn.execute(
            sql.SQL(
                "create table {} (customer_id text, as_of_date date, score double precision, label text,"
                " reason_1 text, reason_2 text, reason_3 text)"
            ).format(sql.Identifier(schema, "rule_baseline_scores"))
        )
        _copy(conn, sql.Identifier(schema, "training_set"), training)
        _copy(conn, sql.Identifier(schema, "rule_baseline_scores"), rules)
