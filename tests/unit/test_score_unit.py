"""Scoring pieces that need no database: canary slices, the summary, the command line."""

from __future__ import annotations

import datetime as dt

import pytest

from custlabel import cli
from custlabel.scoring import canary_slice, score


def test_canary_buckets_are_stable_and_spread():
    buckets = [canary_slice.bucket(f"C{i:09d}") for i in range(2000)]
    assert buckets == [canary_slice.bucket(f"C{i:09d}") for i in range(2000)]
    assert set(buckets) == set(range(100))
    assert 0.15 < sum(b < 20 for b in buckets) / len(buckets) < 0.25


@pytest.mark.parametrize("percent", [-1, 100.5])
def test_canary_percent_is_checked(percent):
    with pytest.raises(ValueError, match="between 0 and 100"):
        canary_slice.validate_percent(percent)


def test_slices_split_on_the_bucket_only_during_a_canary():
    champion, challenger = object(), object()
    assert score._slices(champion, None, 10) == [("champion", champion, None)]
    assert score._slices(champion, challenger, 0) == [("champion", champion, None)]
    roles = [(role, model) for role, model, _ in score._slices(champion, challenger, 10)]
    assert roles == [("canary", challenger), ("champion", champion)]
    assert [role for role, _, where in score._slices(None, challenger, 100) if where is None] == ["canary"]


def test_summary_says_what_was_published_and_where_to_query():
    summary = score.ScoreSummary(
        "analytics",
        dt.date(2026, 6, 30),
        1234,
        0.125,
        [score.SliceResult("customer-labels", "3", "champion", "sql", 1234, "exact-linear")],
        2.5,
    )
    text = str(summary)
    assert "labelled 1,234 customers as of 2026-06-30" in text
    assert "bad rate 12.5%" in text
    assert "customer-labels v3" in text and "sql engine" in text
    assert "select * from analytics.customer_labels" in text


def test_the_summary_names_the_unregistered_rule_without_a_version():
    rule = score.SliceResult("rule-baseline", "unregistered", "champion", "sql", 10, "rule")
    text = str(score.ScoreSummary("analytics", dt.date(2026, 6, 30), 10, 0.1, [rule], 1.0))
    assert "rule-baseline (unregistered)" in text and "vunregistered" not in text


def test_cli_score_and_grants_options():
    args = cli.build_parser().parse_args(
        ["score", "--as-of", "2026-06-01", "--target", "test", "--engine", "sql", "--canary-percent", "5", "--force"]
    )
    assert (args.as_of, args.target, args.engine, args.canary_percent, args.force) == (
        dt.date(2026, 6, 1), "test", "sql", 5.0, True,
    )
    assert args.alias == "champion" and args.canary_alias is None  # canary in prod, challenger elsewhere
    grants = cli.build_parser().parse_args(["grants", "--target", "prod"])
    assert grants.role == "custlabel_bi" and grants.handler is cli._grants
