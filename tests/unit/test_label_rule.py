"""The one label rule: "bad" when the score reaches the threshold, the same in numpy and SQL."""

from __future__ import annotations

import numpy as np
from psycopg import sql

from custlabel.training import evaluate, threshold_cut


def test_a_score_at_the_threshold_is_bad() -> None:
    scores = np.array([0.1, 0.4999, 0.5, 0.9])
    assert threshold_cut.is_bad(scores, 0.5).tolist() == [False, False, True, True]
    assert threshold_cut.labels(scores, 0.5).tolist() == ["good", "good", "bad", "bad"]


def test_the_sql_form_states_the_same_rule() -> None:
    expression = threshold_cut.label_sql(sql.Identifier("score"), sql.Literal(0.5)).as_string(None)
    assert expression == "case when \"score\" >= 0.5 then 'bad' else 'good' end"


def test_evaluation_counts_the_labels_the_rule_gives() -> None:
    y = np.array([0, 1, 1, 0])
    metrics = evaluate.metrics_at(y, np.array([0.2, 0.5, 0.7, 0.5]), 0.5)
    assert (metrics.tp, metrics.fp, metrics.fn, metrics.tn) == (2, 1, 0, 1)
