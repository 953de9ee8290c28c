"""The explainability report: importance, partial dependence, and a reasons check that catches misleading words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from custlabel.release import explainability
from custlabel.scoring import reasons
from custlabel.training.features import MODEL_FEATURES
from custlabel.training.model_families import build_pipeline
from helpers.scoring import synthetic_frame


def _collinear(rows: int = 3000, seed: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """Falling revenue makes customers bad; the trend's own weight is positive only through revenue_90d."""
    rng = np.random.default_rng(seed)
    frame = synthetic_frame(rows, seed=seed)
    revenue, previous = rng.normal(0, 1, rows), rng.normal(0, 1, rows)
    frame["revenue_90d"], frame["revenue_prev_90d"] = revenue, previous
    frame["revenue_trend_90d"] = revenue - previous + rng.normal(0, 0.3, rows)
    frame["tenure_days"] = rng.uniform(0, 1500, rows)
    z = -3.0 * revenue + frame["revenue_trend_90d"].to_numpy() - frame["tenure_days"].to_numpy() / 500
    return frame, (rng.random(rows) < 1 / (1 + np.exp(-z))).astype(int)


@pytest.fixture(scope="module")
def fitted():
    frame, y = _collinear(1500)
    return build_pipeline(LogisticRegression(max_iter=2000)).fit(frame[MODEL_FEATURES], y), frame, y


def test_the_reasons_of_today_pass_the_check(fitted):
    pipeline, frame, _ = fitted
    gate, counts = explainability.check_reasons(pipeline, MODEL_FEATURES, frame)
    assert gate.passed, gate.reason
    assert "revenue_trend_90d" in gate.figures["unnamed_features"]
    assert counts["low revenue in the last 90 days"] > 0


def test_the_check_catches_a_reason_against_the_risk(fitted, monkeypatch):
    pipeline, frame, _ = fitted
    monkeypatch.setattr(reasons, "_mark_nameable", lambda model, sample, logits: model)
    gate, _ = explainability.check_reasons(pipeline, MODEL_FEATURES, frame)
    assert not gate.passed and "reasons against the direction of risk" in gate.reason
    assert "revenue rising" in gate.figures["against_risk"]


def test_the_check_catches_new_customer_for_an_old_one(fitted, monkeypatch):
    pipeline, frame, _ = fitted
    monkeypatch.setitem(reasons.PHRASES, "tenure_days", ("long-standing customer", "new customer", "customer since unknown"))
    monkeypatch.setitem(reasons.ABSOLUTE_WORDS, "tenure_days", reasons.AbsoluteWords(below=((90, "new customer"),)))
    gate, _ = explainability.check_reasons(pipeline, MODEL_FEATURES, frame)
    assert not gate.passed and "'new customer' for" in gate.reason and "customers of 90 days or more" in gate.reason


def test_report_ranks_features_and_draws_partial_dependence(fitted):
    pipeline, frame, y = fitted
    report = explainability.report(pipeline, MODEL_FEATURES, frame, y)
    assert report.importance.index[0] == "revenue_90d"
    assert list(report.importance.columns) == ["importance", "std"]
    assert len(report.curves) == explainability.TOP_FEATURES and "revenue_90d" in report.curves
    grid, average = report.curves["revenue_90d"]
    assert average[0] > average[-1]  # more revenue, less risk
    page = report.html()
    assert page.count("data:image/png;base64,") == 2 and "Per-customer reasons" in page
