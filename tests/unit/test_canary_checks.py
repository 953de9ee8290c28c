"""A canary night's health checks, with the shipped release.yml and acceptance.yml: the canary judged on its own
slice, and against the champion only when the champion is a registered model too."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest

from custlabel import gate_verdicts
from custlabel.config import get_settings
from custlabel.release import canary_health, release_policy
from custlabel.release.score_distribution import ScoreDistribution
from custlabel.training import acceptance

POLICY = release_policy.load(settings=get_settings()).canary
BOUNDS = acceptance.load(settings=get_settings()).performance
RNG = np.random.default_rng(0)
ROWS = 2_000
# Calibrated scores of a model: its validation night, and tonight's slice drawn alike.
VALIDATION = ScoreDistribution.of(RNG.beta(3, 2, 20_000))
CANARY = RNG.beta(3, 2, ROWS)
AT_57 = float(np.quantile(CANARY, 0.43))  # the threshold that labels 57% of the slice bad
# The rule baseline on the same slice: its own scale, 34% bad.
RULE = RNG.integers(0, 6, ROWS).astype(float)
RULE_BAD = RNG.random(ROWS) < 0.34


def night(scores: np.ndarray, threshold: float = AT_57, champion: np.ndarray = RULE, champion_bad: np.ndarray = RULE_BAD,
          registered_champion: bool = False, seconds: float = 1.0, expected: int = ROWS,
          validation: ScoreDistribution | None = VALIDATION) -> canary_health.SliceNight:
    return canary_health.SliceNight(date(2026, 7, 1), expected, scores, scores >= threshold, champion, champion_bad,
                                    seconds, registered_champion, validation)


def check(scores: np.ndarray, **kwargs) -> list[gate_verdicts.GateResult]:
    return canary_health.health_checks(POLICY, BOUNDS, night(scores, **kwargs), None)


def verdicts(results: list[gate_verdicts.GateResult]) -> dict[str, str]:
    return {result.name: result.verdict for result in results}


def failed(results: list[gate_verdicts.GateResult]) -> set[str]:
    return {name for name, verdict in verdicts(results).items() if verdict == "failed"}


def test_the_shipped_policy_gates_the_gaps_only_between_registered_models():
    assert (POLICY.against_champion.max_bad_share_gap, BOUNDS.max_bad_share) == (0.10, 0.65)


def test_psi_is_zero_for_the_same_scores_and_large_for_shifted_ones():
    assert canary_health.psi(CANARY, CANARY) == pytest.approx(0.0)
    assert canary_health.psi(CANARY, RNG.beta(3, 2, ROWS)) < 0.05
    assert canary_health.psi(CANARY, np.clip(CANARY + 0.3, 0, 1)) > 1.0


def test_a_validation_distribution_survives_its_tag():
    again = ScoreDistribution.from_json(VALIDATION.to_json())
    assert again == VALIDATION and len(again.edges) == 9 and sum(again.shares) == pytest.approx(1.0)
    assert again.psi(CANARY) == pytest.approx(VALIDATION.psi(CANARY)) and again.psi(CANARY) < 0.05


def test_a_canary_labelling_57_percent_bad_against_the_rules_34_stays_healthy():
    results = check(CANARY.copy())
    assert gate_verdicts.all_passed(results), gate_verdicts.failures(results)
    assert verdicts(results) == {
        "canary_scores_present": "passed", "canary_bad_share": "passed", "canary_validation_psi": "passed",
        "canary_estimated_precision": "passed", "canary_scoring": "passed", "canary_champion_bad_share": "reported",
        "canary_champion_score_psi": "reported", "canary_realized_precision": "reported",
    }
    (share,) = [r for r in results if r.name == "canary_champion_bad_share"]
    assert share.reason.startswith("bad share 57.0% against the rule baseline's 3")
    assert "reported only: a model is expected to label differently from the rule baseline" in share.reason
    lines = canary_health.against_champion_lines([r.as_dict() for r in results])
    assert lines[0].startswith("bad share 57.0% against the rule baseline's") and lines[0].endswith("(reported)")


def test_a_canary_whose_scores_are_all_099_is_rolled_back():
    results = check(np.full(ROWS, 0.99))
    assert {"canary_bad_share", "canary_validation_psi"} <= failed(results)
    assert "bad share 100.0% on the slice (acceptance.yml's max_bad_share 65%)" in " ".join(gate_verdicts.failures(results))


def test_nan_missing_or_out_of_range_scores_are_rolled_back():
    nan = CANARY.copy()
    nan[:10] = np.nan
    assert "canary_scores_present" in failed(check(nan))
    assert "canary_scores_present" in failed(check(CANARY[:1_500].copy()))
    wild = CANARY.copy()
    wild[0] = 1.5
    assert "canary_scores_present" in failed(check(wild))


def test_a_bad_share_above_acceptance_is_rolled_back_and_none_at_all_too():
    too_many = check(CANARY.copy(), threshold=float(np.quantile(CANARY, 0.2)))
    assert failed(too_many) == {"canary_bad_share"}
    nobody = check(CANARY.copy(), threshold=1.01)
    assert "canary_bad_share" in failed(nobody)
    assert "nobody on the slice is labelled bad" in " ".join(gate_verdicts.failures(nobody))


def test_scores_far_from_the_validation_distribution_are_rolled_back():
    # the same ranking, labels and bad share, but scores pushed up: not the version that was validated
    results = check(np.sqrt(CANARY), threshold=np.sqrt(AT_57))
    assert failed(results) == {"canary_validation_psi"}
    (reason,) = gate_verdicts.failures(results)
    assert reason.startswith("canary_validation_psi: score PSI") and "against its own scores at validation (at most 0.25)" in reason


def test_a_version_validated_without_a_recorded_distribution_is_rolled_back():
    results = check(CANARY.copy(), validation=None)
    assert failed(results) == {"canary_validation_psi"}
    assert "validate it (`custlabel validate VERSION`) before its canary" in gate_verdicts.failures(results)[0]


def test_an_estimated_precision_below_the_floor_is_rolled_back():
    low = check(CANARY * 0.6, threshold=AT_57 * 0.6)
    assert "canary_estimated_precision" in failed(low)
    assert "at least 65% (acceptance.yml's min_precision 70% less the margin 5%)" in " ".join(gate_verdicts.failures(low))


def test_two_registered_models_with_a_large_gap_are_rolled_back():
    champion = RNG.beta(3, 2, ROWS)
    at_30 = champion >= np.quantile(champion, 0.70)
    results = check(CANARY.copy(), champion=champion, champion_bad=at_30, registered_champion=True)
    assert failed(results) == {"canary_champion_bad_share"}
    assert "against the champion's 30.0% on the same slice (gap 27.0%, at most 10%)" in gate_verdicts.failures(results)[0]
    close = check(CANARY.copy(), champion=champion, champion_bad=champion >= AT_57, registered_champion=True)
    assert gate_verdicts.all_passed(close) and verdicts(close)["canary_champion_bad_share"] == "passed"


def test_the_score_psi_between_registered_models_is_gated():
    champion = np.clip(CANARY - 0.2, 0, 1)
    results = check(CANARY.copy(), champion=champion, champion_bad=CANARY >= AT_57, registered_champion=True)
    assert failed(results) == {"canary_champion_score_psi"}


def test_slow_scoring_and_scoring_errors_are_rolled_back():
    assert failed(check(CANARY.copy(), seconds=POLICY.max_scoring_seconds + 1)) == {"canary_scoring"}
    error = canary_health.scoring_failed(ValueError("feature missing"))
    assert not error.passed and "ValueError: feature missing" in error.reason


def test_realized_precision_counts_once_windows_mature():
    below_floor = canary_health.Realized(customers=400, canary_precision=0.66, champion_precision=0.60)
    assert not canary_health.realized_check(POLICY, BOUNDS, below_floor, comparable=False).passed
    good = canary_health.Realized(customers=400, canary_precision=0.78, champion_precision=0.90)
    against_rule = canary_health.realized_check(POLICY, BOUNDS, good, comparable=False)
    assert against_rule.passed and "the rule baseline's (reported) 90.0%" in against_rule.reason
    assert not canary_health.realized_check(POLICY, BOUNDS, good, comparable=True).passed
    close = canary_health.Realized(customers=400, canary_precision=0.86, champion_precision=0.90)
    assert canary_health.realized_check(POLICY, BOUNDS, close, comparable=True).passed
    assert canary_health.realized_check(POLICY, BOUNDS, None).verdict == "reported"


def test_an_empty_slice_is_rolled_back_with_figures_the_release_log_can_store():
    results = check(np.array([]))
    assert {"canary_scores_present", "canary_bad_share"} <= failed(results)
    json.dumps([result.as_dict() for result in results], allow_nan=False)  # jsonb refuses NaN
