"""Scoring the marts dbt really builds (demo data): the contract between dbt and the scorer holds."""

from __future__ import annotations

import numpy as np
import pytest
from psycopg import sql
from sklearn.linear_model import LogisticRegression

from custlabel.scoring import reasons, score, sql_scoring
from custlabel.training.deployed_model import CHAMPION, DeployedModel
from custlabel.training.features import MODEL_FEATURES
from custlabel.training.model_families import build_pipeline
from custlabel.training.training_data import normalize
from custlabel.warehouse import db

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCHEMA = "score_e2e"
MARTS = ("customer_features_current", "customer_features", "rule_baseline_scores")


@pytest.fixture(scope="module")
def warehouse(built_warehouse):
    """The dbt marts copied to a schema of our own, so these tests never touch analytics.customer_labels."""
    with db.connect(built_warehouse) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(SCHEMA)))
        for mart in MARTS:
            conn.execute(
                sql.SQL("create table {} as select * from {}").format(
                    sql.Identifier(SCHEMA, mart), sql.Identifier(built_warehouse.schema, mart)
                )
            )
    return built_warehouse


@pytest.fixture(scope="module")
def training_rows(warehouse):
    query = sql.SQL("select * from {} order by md5(customer_id || as_of_date::text) limit 4000").format(
        sql.Identifier(warehouse.schema, "training_set")
    )
    return normalize(db.read_frame(warehouse, query.as_string()))


def run(settings, model, engine="auto") -> score.ScoreSummary:
    return score.score(
        settings,
        score.ScoreRequest(SCHEMA, engine=engine, force=True),
        score.GivenModels({CHAMPION: model}),
        sql_scoring.MemoryParityStore(),
    )


def labels(settings) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute(
            sql.SQL("select customer_id, score, label, reason_1, reason_2, reason_3 from {} order by 1").format(
                sql.Identifier(SCHEMA, "customer_labels")
            )
        ).fetchall()


def test_rule_baseline_labels_tonights_customers_with_its_reasons(warehouse):
    summary = run(warehouse, None)
    with db.connect(warehouse) as conn:
        expected = conn.execute(
            sql.SQL(
                "select r.customer_id, r.score, r.label, r.reason_1, r.reason_2, r.reason_3 from {r} as r"
                " join {f} as f using (customer_id, as_of_date) order by 1"
            ).format(r=sql.Identifier(SCHEMA, "rule_baseline_scores"), f=sql.Identifier(SCHEMA, "customer_features_current"))
        ).fetchall()
    assert summary.customers == len(expected) > 0
    assert labels(warehouse) == expected


def test_sql_and_python_agree_on_real_features(warehouse, training_rows):
    pipeline = build_pipeline(LogisticRegression(max_iter=2000))
    pipeline.fit(training_rows[MODEL_FEATURES], training_rows["is_bad"])
    model = DeployedModel("demo-logreg", "1", "champion", 0.5, pipeline, list(MODEL_FEATURES))
    in_sql = run(warehouse, model, "sql")
    sql_rows = labels(warehouse)
    run(warehouse, model, "python")
    python_rows = labels(warehouse)
    assert [s.engine for s in in_sql.slices] == ["sql"]
    assert np.abs(np.array([r[1] for r in sql_rows]) - np.array([r[1] for r in python_rows])).max() <= 1e-6
    assert [r[2:] for r in sql_rows] == [r[2:] for r in python_rows]


def test_the_training_pipeline_compiles_to_sql_with_exact_reasons(warehouse, training_rows):
    pipeline = build_pipeline(LogisticRegression(max_iter=2000))
    pipeline.fit(training_rows[MODEL_FEATURES], training_rows["is_bad"])
    model = DeployedModel("demo-trained", "1", "champion", 0.5, pipeline, list(MODEL_FEATURES))
    summary = run(warehouse, model, "auto")
    assert [(s.engine, s.reasons) for s in summary.slices] == [("sql", reasons.EXACT)]
    assert all(row[2] in ("good", "bad") for row in labels(warehouse))
