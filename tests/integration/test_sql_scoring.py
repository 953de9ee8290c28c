"""In-warehouse scoring: SQL and Python agree, parity is recorded on the version, known traps fall back."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import numpy as np
import pytest
from psycopg import sql

from custlabel.config import Settings
from custlabel.devtools.benchmarks.scoring import (
    create_synthetic_features,
    read_features,
)
from custlabel.scoring import score, sql_scoring
from custlabel.training import model_families, recalibration, registry
from custlabel.warehouse import db
from helpers.scoring import fit_model

pytestmark = pytest.mark.integration

SCHEMA = "analytics_test"
CUSTOMERS = 300
NIGHT = dt.date(2026, 6, 1)


@pytest.fixture(scope="module")
def warehouse(make_database, tmp_path_factory) -> Settings:
    """A database with tonight's features, and a registry of our own (not the session's)."""
    settings = make_database("sql_scoring_it")
    folder = tmp_path_factory.mktemp("sql_registry")
    settings = dataclasses.replace(
        settings,
        model_name="sql-scoring-test",
        mlflow_tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        mlflow_artifact_root=folder / "artifacts",
    )
    with db.connect(settings) as conn:
        create_synthetic_features(conn, SCHEMA, CUSTOMERS, [NIGHT])
    return settings


@pytest.fixture(scope="module")
def frame(warehouse):
    """Training rows: enough for full-depth trees (the big forest must reach Postgres's column limit)."""
    with db.connect(warehouse) as conn:
        create_synthetic_features(conn, "training", 3000, [NIGHT], seed=0.17, prefix="T")
    return read_features(warehouse, "training", 3000)


def run(settings, model, engine, store=None, schema=None) -> score.ScoreSummary:
    return score.score(
        settings,
        score.ScoreRequest(schema or SCHEMA, engine=engine, force=True),
        score.GivenModels({"champion": model}),
        store or sql_scoring.MemoryParityStore(),
    )


def rows(settings, schema=SCHEMA) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute(
            sql.SQL("select customer_id, score, label, reason_1, reason_2, reason_3 from {} order by 1").format(
                sql.Identifier(schema, "customer_labels")
            )
        ).fetchall()


def recalibrated(model):
    """The stand-in wrapped in a Platt map as training wraps an overconfident model, threshold mapped alike."""
    wrapped = recalibration.RecalibratedClassifier(model.pipeline, slope=0.6, intercept=-0.4)
    return dataclasses.replace(
        model, pipeline=wrapped, threshold=float(wrapped.calibrate(np.array([model.threshold]))[0])
    )


@pytest.mark.parametrize("kind", ["logreg", "forest", "recalibrated-logreg", "recalibrated-forest"])
def test_sql_and_python_engines_write_the_same_labels_and_reasons(warehouse, frame, kind):
    model = fit_model(frame, kind.removeprefix("recalibrated-"))
    if kind.startswith("recalibrated-"):
        model = recalibrated(model)
    in_python = run(warehouse, model, "python")
    python_rows = rows(warehouse)
    in_sql = run(warehouse, model, "sql")
    sql_rows = rows(warehouse)
    assert [s.engine for s in in_python.slices] == ["python"]
    assert [s.engine for s in in_sql.slices] == ["sql"]
    assert [r[0] for r in python_rows] == [r[0] for r in sql_rows]
    diff = np.abs(np.array([r[1] for r in python_rows]) - np.array([r[1] for r in sql_rows]))
    assert diff.max() <= sql_scoring.PARITY_TOLERANCE
    for p, s in zip(python_rows, sql_rows, strict=True):
        assert p[2] == s[2] or abs(p[1] - model.threshold) <= sql_scoring.PARITY_TOLERANCE
        assert p[3:] == s[3:]


def _register(settings: Settings, model, alias: str) -> str:
    """Log and register a fitted pipeline the way training does, and point an alias at it."""
    with registry.training_run(settings, "register for a test", {}):
        version = registry.register_model(
            settings, model.pipeline, model.sample.head(50), model.threshold, model_families.trusted_types()
        )
    registry.set_alias(settings, alias, version)
    return version


@dataclasses.dataclass
class _ToRegister:
    pipeline: object
    threshold: float
    feature_columns: list[str]
    sample: object


def test_parity_is_checked_once_and_recorded_on_the_registered_version(warehouse, frame):
    logreg = fit_model(frame, "logreg")
    version = _register(warehouse, _ToRegister(logreg.pipeline, 0.5, logreg.feature_columns, frame[logreg.feature_columns]), "champion")
    summary = score.score(warehouse, score.ScoreRequest(SCHEMA, engine="auto", force=True))
    assert [(s.model_version, s.engine) for s in summary.slices] == [(version, "sql")]
    tags = registry.client(warehouse).get_model_version(warehouse.model_name, version).tags
    assert tags[sql_scoring.PARITY_TAG] == "passed"
    assert float(tags[sql_scoring.PARITY_DIFF_TAG]) <= sql_scoring.PARITY_TOLERANCE
    assert f"{CUSTOMERS} rows" in tags[sql_scoring.PARITY_DETAIL_TAG]
    again = score.score(warehouse, score.ScoreRequest(SCHEMA, engine="auto", force=True))
    assert again.slices[0].engine_reason == "SQL parity passed: recorded on the version"



def test_a_registered_recalibrated_version_loads_and_scores_alike_in_sql(warehouse, frame):
    plain = fit_model(frame, "logreg")
    model = recalibrated(plain)
    to_register = _ToRegister(model.pipeline, model.threshold, model.feature_columns, frame[model.feature_columns])
    version = _register(warehouse, to_register, "champion")
    loaded = registry.load_alias(warehouse, "champion")
    assert isinstance(loaded.pipeline, recalibration.RecalibratedClassifier)
    assert loaded.threshold == pytest.approx(model.threshold)
    summary = score.score(warehouse, score.ScoreRequest(SCHEMA, engine="auto", force=True))
    assert [(s.model_version, s.engine) for s in summary.slices] == [(version, "sql")]
    written = rows(warehouse)
    features = read_features(warehouse, SCHEMA, CUSTOMERS).set_index("customer_id").loc[[r[0] for r in written]]
    uncalibrated = plain.pipeline.predict_proba(features[plain.feature_columns])[:, 1]
    expected = model.pipeline.calibrate(uncalibrated)
    np.testing.assert_allclose([r[1] for r in written], expected, atol=sql_scoring.PARITY_TOLERANCE)
    # the labels are the uncalibrated model's at its own threshold
    assert [r[2] for r in written] == ["bad" if s >= plain.threshold else "good" for s in uncalibrated]


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("hgb", "histogram gradient boosting differs from Python"),
        ("big-forest", "tree leaves: the SQL would pass Postgres's 1,664-column limit"),
    ],
)
def test_known_traps_fall_back_to_python_with_a_reason(warehouse, frame, kind, why, caplog):
    model = fit_model(frame, kind)
    summary = run(warehouse, model, "sql")
    assert summary.customers == CUSTOMERS
    assert summary.slices[0].engine == "python"
    assert re.search(why, summary.slices[0].engine_reason), summary.slices[0].engine_reason
    assert any("scoring" in r.getMessage() and "in Python" in r.getMessage() for r in caplog.records)


def test_sql_that_fails_at_run_time_falls_back(warehouse, frame, monkeypatch):
    """A value the Python model absorbs but Postgres's exp() cannot (overflow) outside the parity sample."""
    schema = "score_overflow"
    with db.connect(warehouse) as conn:
        create_synthetic_features(conn, schema, 200, [NIGHT], prefix="X")
        conn.execute(
            sql.SQL(
                "update {t} set overdue_invoices_count = 1e300"
                " where customer_id = (select customer_id from {t} order by md5(customer_id) desc limit 1)"
            ).format(t=sql.Identifier(schema, "customer_features_current"))
        )
    monkeypatch.setattr(score, "SAMPLE_ROWS", 50)
    model = fit_model(frame, "logreg")
    summary = run(warehouse, model, "sql", schema=schema)
    assert summary.customers == 200
    assert summary.slices[0].engine == "python"
    assert summary.slices[0].engine_reason.startswith("SQL failed")


def test_a_version_that_failed_is_not_translated_again(warehouse, frame):
    store = sql_scoring.MemoryParityStore()
    model = fit_model(frame, "big-forest", version="7")
    first = run(warehouse, model, "auto", store=store)
    assert "tree leaves" in first.slices[0].engine_reason
    assert store.results[(model.name, "7")].passed is False
    second = run(warehouse, model, "auto", store=store)
    assert second.slices[0].engine_reason == "SQL parity failed: recorded on the version"
