"""Reasons: the additive push map, exact for linear models, a surrogate for trees, in readable words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from custlabel.scoring import reasons
from custlabel.training.features import MODEL_FEATURES, NUMERIC_FEATURES
from helpers.scoring import fit_model, synthetic_frame


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def test_every_feature_has_words():
    assert set(NUMERIC_FEATURES) <= set(reasons.PHRASES)
    assert reasons.phrases_for("brand_new_feature") == (
        "brand new feature high",
        "brand new feature low",
        "brand new feature unknown",
    )


def test_linear_models_get_the_exact_additive_map():
    frame = synthetic_frame()
    model = fit_model(frame, "logreg")
    explainer = reasons.build_reason_model(model.pipeline, MODEL_FEATURES, frame[MODEL_FEATURES])
    assert explainer.method == reasons.EXACT
    logits = _logit(model.pipeline.predict_proba(frame[MODEL_FEATURES])[:, 1])
    typical = reasons.reference_row(frame, NUMERIC_FEATURES, ["segment"])
    reference = pd.DataFrame([typical], columns=MODEL_FEATURES).astype(frame[MODEL_FEATURES].dtypes.to_dict())
    base = _logit(model.pipeline.predict_proba(reference)[:, 1])[0]
    pushes = reasons.contributions(explainer, frame[MODEL_FEATURES])
    np.testing.assert_allclose(base + pushes.sum(axis=1), logits, atol=1e-6)


def test_trees_get_a_linear_surrogate_pointing_the_right_way():
    frame = synthetic_frame(1500)
    model = fit_model(frame, "forest")
    explainer = reasons.build_reason_model(model.pipeline, MODEL_FEATURES, frame[MODEL_FEATURES])
    assert explainer.method == reasons.SURROGATE
    weights = {p.feature: p.weight for p in explainer.numeric}
    # synthetic_outcome makes overdue invoices and returns bad: the surrogate agrees on the sign.
    assert weights["overdue_invoices_count"] > 0
    assert weights["return_rate_365d"] > 0


def test_top_reasons_are_the_largest_positive_pushes_in_words():
    frame = synthetic_frame()
    model = fit_model(frame, "logreg")
    explainer = reasons.build_reason_model(model.pipeline, MODEL_FEATURES, frame[MODEL_FEATURES])
    worst = frame[MODEL_FEATURES].iloc[[0]].copy()
    for push in explainer.numeric:
        worst[push.feature] = push.reference
    worst["overdue_invoices_count"] = 40.0
    first, _, _ = reasons.top_reasons(explainer, worst)
    assert first[0] == "many overdue invoices"
    typical = worst.assign(overdue_invoices_count=next(p.reference for p in explainer.numeric if p.feature == "overdue_invoices_count"))
    positive = int((reasons.contributions(explainer, typical)[0] > 0).sum())
    texts = [column[0] for column in reasons.top_reasons(explainer, typical)]
    assert sum(text is not None for text in texts) == min(positive, 3)


def test_unknown_values_and_categories_have_words():
    frame = synthetic_frame()
    model = fit_model(frame, "logreg")
    explainer = reasons.build_reason_model(model.pipeline, MODEL_FEATURES, frame[MODEL_FEATURES])
    row = frame[MODEL_FEATURES].iloc[[0]].copy()
    row["days_since_last_sale"] = np.nan
    row["segment"] = "online"
    words = reasons._phrases(explainer, row)[0]
    features = explainer.features
    assert words[features.index("days_since_last_sale")] == "no purchase on record"
    assert words[features.index("segment")] == "segment: online"


def _fit(frame: pd.DataFrame, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    from custlabel.training.model_families import build_pipeline

    return build_pipeline(LogisticRegression(max_iter=2000)).fit(frame[MODEL_FEATURES], y)


def test_a_reason_reads_in_the_direction_that_raised_the_risk():
    # Revenue falling is what makes customers bad here; the trend's own coefficient is positive only
    # because it moves with revenue_90d. "revenue rising" must never be named as a reason for bad.
    rng = np.random.default_rng(5)
    frame = synthetic_frame(4000, seed=5)
    revenue = rng.normal(0.0, 1.0, len(frame))
    previous = rng.normal(0.0, 1.0, len(frame))
    frame["revenue_90d"], frame["revenue_prev_90d"] = revenue, previous
    frame["revenue_trend_90d"] = revenue - previous + rng.normal(0.0, 0.3, len(frame))
    z = -3.0 * revenue + 1.0 * frame["revenue_trend_90d"].to_numpy()
    y = (rng.random(len(frame)) < 1 / (1 + np.exp(-z))).astype(int)
    pipeline = _fit(frame, y)
    explainer = reasons.build_reason_model(pipeline, MODEL_FEATURES, frame[MODEL_FEATURES])
    named = np.concatenate(reasons.top_reasons(explainer, frame[MODEL_FEATURES]))
    assert "revenue rising" not in set(named)
    # the honest reasons are still there
    assert "low revenue in the last 90 days" in set(named)


def test_new_customer_means_an_absolute_tenure():
    rng = np.random.default_rng(8)
    frame = synthetic_frame(3000, seed=8)
    frame["tenure_days"] = rng.uniform(0, 1500, len(frame))
    y = (rng.random(len(frame)) < 1 / (1 + np.exp(frame["tenure_days"].to_numpy() / 300 - 2.5))).astype(int)
    pipeline = _fit(frame, y)
    explainer = reasons.build_reason_model(pipeline, MODEL_FEATURES, frame[MODEL_FEATURES])
    columns = reasons.top_reasons(explainer, frame[MODEL_FEATURES])
    tenure = frame["tenure_days"].to_numpy()
    called_new = np.column_stack(columns) == "new customer"
    assert called_new.any()
    assert (tenure[called_new.any(axis=1)] < 90).all()
    first = columns[0]
    # a customer of about a year is below the median tenure but is not "new"
    year_old = (tenure > 365) & (tenure < 450)
    assert set(first[year_old]) == {"shorter customer history than most"}
    assert set(first[(tenure > 100) & (tenure < 350)]) == {"customer for less than a year"}
