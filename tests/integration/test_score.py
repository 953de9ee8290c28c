"""Scoring on the real Postgres: every customer labelled, with reasons, history, canary, checks."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from custlabel.devtools.benchmarks.scoring import (
    create_synthetic_features,
    read_features,
)
from custlabel.errors import CustlabelError
from custlabel.scoring import canary_slice, reasons, score, sql_scoring, writeback
from custlabel.training.deployed_model import UNREGISTERED
from custlabel.warehouse import db
from helpers.scoring import RULE_REASON, create_synthetic_rule_baseline, fit_model

pytestmark = pytest.mark.integration

SCHEMA = "analytics_test"
CUSTOMERS = 400
EARLIER, TONIGHT = dt.date(2026, 5, 1), dt.date(2026, 6, 1)


@pytest.fixture(scope="module")
def warehouse(make_database):
    settings = make_database("score_it")
    with db.connect(settings) as conn:
        create_synthetic_features(conn, SCHEMA, CUSTOMERS, [EARLIER, TONIGHT])
        create_synthetic_rule_baseline(conn, SCHEMA)
    return settings


@pytest.fixture(scope="module")
def models(warehouse):
    frame = read_features(warehouse, SCHEMA, CUSTOMERS)
    return {
        "logreg": fit_model(frame, "logreg", name="score-test", version="1"),
        "forest": fit_model(frame, "forest", name="score-test", version="2"),
    }


def run(settings, champion=None, challenger=None, **options) -> score.ScoreSummary:
    """score() with stand-ins for the registry."""
    options.setdefault("force", True)
    return score.score(
        settings,
        score.ScoreRequest(SCHEMA, **options),
        score.GivenModels({"champion": champion, "challenger": challenger}),
        sql_scoring.MemoryParityStore(),
    )


def fetch(settings, query: str, params=None) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute(query, params).fetchall()


def labels(settings) -> list[tuple]:
    return fetch(settings, f"select * from {SCHEMA}.customer_labels order by customer_id")


def test_python_engine_labels_every_customer_with_reasons(warehouse, models):
    model = models["logreg"]
    summary = run(warehouse, model, engine="python")
    assert summary.customers == CUSTOMERS and summary.as_of_date == TONIGHT
    assert [(s.engine, s.reasons) for s in summary.slices] == [("python", reasons.EXACT)]
    rows = fetch(
        warehouse,
        f"select customer_id, label, score, threshold, model_name, model_version, as_of_date, scored_at,"
        f" reason_1, reason_2, reason_3 from {SCHEMA}.customer_labels",
    )
    assert len(rows) == CUSTOMERS == len({r[0] for r in rows})
    for _, label, value, threshold, name, version, as_of, scored_at, *why in rows:
        assert label == ("bad" if value >= threshold else "good")
        assert (threshold, name, version, as_of) == (0.5, "score-test", "1", TONIGHT)
        assert scored_at is not None
        assert all(text is None or isinstance(text, str) for text in why)
    words = {text for pair in reasons.PHRASES.values() for text in pair} | {
        reasons.category_phrase("segment", value) for value in ("retail", "wholesale", "online")
    } | {text for words in reasons.ABSOLUTE_WORDS.values() for _, text in (*words.below, *words.at_least)}
    used = {text for row in rows for text in row[8:] if text is not None}
    assert used and used <= words
    expected = model.pipeline.predict_proba(read_features(warehouse, SCHEMA, CUSTOMERS)[model.feature_columns])[:, 1]
    stored = np.array([r[0] for r in fetch(warehouse, f"select score from {SCHEMA}.customer_labels order by customer_id")])
    np.testing.assert_allclose(stored, expected, rtol=0, atol=1e-12)
    key = fetch(
        warehouse,
        "select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
        " where i.indrelid = %s::regclass and i.indisprimary",
        [f"{SCHEMA}.customer_labels"],
    )
    assert key == [("customer_id",)]


def test_rerunning_a_night_replaces_its_history(warehouse, models):
    run(warehouse, models["logreg"], engine="python")
    run(warehouse, models["logreg"], engine="python")
    per_night = fetch(warehouse, f"select as_of_date, count(*) from {SCHEMA}.customer_label_history group by 1")
    assert dict(per_night)[TONIGHT] == CUSTOMERS


def test_tonight_must_be_the_night_the_current_features_hold(warehouse, models):
    before = labels(warehouse)
    with pytest.raises(
        writeback.WriteBackError,
        match=rf"{SCHEMA}\.customer_features_current holds the night {TONIGHT}, not {EARLIER}: run `custlabel dbt build`",
    ):
        run(warehouse, models["logreg"], engine="python", expected_as_of=EARLIER)
    assert labels(warehouse) == before
    assert run(warehouse, models["logreg"], engine="python", expected_as_of=TONIGHT).as_of_date == TONIGHT


def test_as_of_scores_an_earlier_night_from_customer_features(warehouse, models):
    summary = run(warehouse, models["logreg"], engine="python", as_of=EARLIER)
    assert summary.as_of_date == EARLIER
    assert fetch(warehouse, f"select distinct as_of_date from {SCHEMA}.customer_labels") == [(EARLIER,)]
    nights = dict(fetch(warehouse, f"select as_of_date, count(*) from {SCHEMA}.customer_label_history group by 1"))
    assert nights[EARLIER] == CUSTOMERS


def test_rule_baseline_labels_while_no_model_is_champion(warehouse):
    summary = run(warehouse, None)
    assert [(s.model_name, s.engine, s.rows) for s in summary.slices] == [("rule-baseline", "sql", CUSTOMERS)]
    rows = fetch(warehouse, f"select model_name, model_version, threshold, label, score, reason_1 from {SCHEMA}.customer_labels")
    assert {(r[0], r[1], r[2]) for r in rows} == {("rule-baseline", UNREGISTERED, 0.5)}
    assert all((r[3] == "bad") == (r[5] == RULE_REASON) for r in rows)


def test_canary_slice_is_a_stable_hash_labelled_by_the_challenger(warehouse, models):
    summary = run(warehouse, models["logreg"], models["forest"], engine="python", canary_percent=25)
    assert [(s.role, s.model_version) for s in summary.slices] == [("canary", "2"), ("champion", "1")]
    rows = fetch(warehouse, f"select customer_id, model_version from {SCHEMA}.customer_labels")
    assert {cid for cid, version in rows if version == "2"} == {cid for cid, _ in rows if canary_slice.bucket(cid) < 25}
    assert 0.1 < sum(version == "2" for _, version in rows) / len(rows) < 0.4
    rerun = run(warehouse, models["logreg"], models["forest"], engine="python", canary_percent=25)
    assert [s.rows for s in rerun.slices] == [s.rows for s in summary.slices]


def test_canary_needs_a_challenger(warehouse, models):
    with pytest.raises(CustlabelError, match="needs a model behind the alias 'challenger'"):
        run(warehouse, models["logreg"], None, canary_percent=10)


def test_label_rate_jump_is_refused_unless_forced(warehouse, models):
    run(warehouse, None, as_of=EARLIER)
    run(warehouse, None)
    before = labels(warehouse)
    everyone_good = dataclasses.replace(models["logreg"], threshold=1.5)
    with pytest.raises(writeback.WriteBackError, match=r"bad rate 0\.0% moved more than 10\.0% from .* on 2026-05-01"):
        run(warehouse, everyone_good, engine="python", force=False)
    assert labels(warehouse) == before
    summary = run(warehouse, everyone_good, engine="python", force=True)
    assert summary.bad_rate == 0.0


class _Broken:
    """A pipeline that fails while scoring, after the staging table was started."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.classes_ = pipeline.classes_

    def predict_proba(self, frame):
        if len(frame) > 100:
            raise ValueError("model exploded mid-run")
        return self.pipeline.predict_proba(frame)


def test_chunks_stream_through_small_blocks(warehouse, models, monkeypatch):
    monkeypatch.setattr(score, "BLOCK_BYTES", 8 << 10)
    model = models["logreg"]
    summary = run(warehouse, model, engine="python")
    assert summary.customers == CUSTOMERS
    expected = model.pipeline.predict_proba(read_features(warehouse, SCHEMA, CUSTOMERS)[model.feature_columns])[:, 1]
    stored = [r[0] for r in fetch(warehouse, f"select score from {SCHEMA}.customer_labels order by customer_id")]
    np.testing.assert_allclose(stored, expected, rtol=0, atol=1e-12)


def test_failed_run_leaves_yesterdays_labels_and_no_staging(warehouse, models):
    run(warehouse, models["logreg"], engine="python")
    before = labels(warehouse)
    broken = dataclasses.replace(models["logreg"], pipeline=_Broken(models["logreg"].pipeline))
    with pytest.raises(score.ChampionScoringError, match="model exploded mid-run"):
        run(warehouse, broken, engine="python")
    assert labels(warehouse) == before
    assert fetch(warehouse, "select to_regclass(%s)", [f"{SCHEMA}.{writeback.STAGING}"]) == [(None,)]


def test_missing_features_say_which_command_builds_them(warehouse, models):
    with pytest.raises(CustlabelError, match=r"analytics\.customer_features_current does not exist: run `custlabel dbt build`"):
        score.score(warehouse, score.ScoreRequest("analytics"), score.GivenModels({"champion": models["logreg"]}))


def test_a_night_without_customers_is_not_published(warehouse, models):
    before = labels(warehouse)
    with pytest.raises(writeback.WriteBackError, match="no eligible customers"):
        run(warehouse, models["logreg"], as_of=dt.date(2020, 1, 1))
    assert labels(warehouse) == before


def test_the_share_labelled_bad_is_bounded_on_the_first_night_too(make_database, models):
    settings = make_database("score_first_night")
    with db.connect(settings) as conn:
        create_synthetic_features(conn, SCHEMA, CUSTOMERS, [TONIGHT])
        create_synthetic_rule_baseline(conn, SCHEMA)
    everyone_bad = dataclasses.replace(models["logreg"], threshold=0.0)
    # no previous night to compare with, and --force: the absolute bound still holds
    with pytest.raises(writeback.WriteBackError, match=r"100\.0% of tonight's 400 customers are labelled bad, above the 60%"):
        run(settings, everyone_bad, engine="python", force=True, max_bad_share=0.6)
    assert fetch(settings, "select to_regclass(%s)", [f"{SCHEMA}.customer_labels"]) == [(None,)]
    assert run(settings, everyone_bad, engine="python", max_bad_share=1.0).bad_rate == 1.0
