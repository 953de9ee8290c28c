"""A canary night's health checks against the champion on the same slice."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from custlabel import canary_checks, gates, release_policy

POLICY = release_policy.Canary(percent=10, nights=3, max_bad_share_gap=0.1, max_score_psi=0.25,
                               max_scoring_seconds=60, max_precision_drop=0.05)
RNG = np.random.default_rng(0)
CHAMPION = RNG.beta(2, 5, 2_000)


def night(scores: np.ndarray, threshold: float = 0.5, seconds: float = 1.0, comparable: bool = True,
          expected: int = 2_000) -> canary_checks.SliceNight:
    return canary_checks.SliceNight(date(2026, 7, 1), expected, scores, scores >= threshold, CHAMPION, CHAMPION >= 0.5,
                                    seconds, comparable)


def verdicts(results) -> dict[str, str]:
    return {result.name: result.verdict for result in results}


def test_psi_is_zero_for_the_same_scores_and_large_for_shifted_ones():
    assert canary_checks.psi(CHAMPION, CHAMPION) == pytest.approx(0.0)
    assert canary_checks.psi(CHAMPION, RNG.beta(2, 5, 2_000)) < 0.05
    assert canary_checks.psi(CHAMPION, np.clip(CHAMPION + 0.3, 0, 1)) > 1.0


def test_a_canary_like_the_champion_is_healthy():
    results = canary_checks.health_checks(POLICY, night(CHAMPION.copy()), None)
    assert gates.all_passed(results)
    assert verdicts(results)["canary_realized_precision"] == "reported"


def test_a_wrong_threshold_fails_the_bad_share_check():
    results = canary_checks.health_checks(POLICY, night(CHAMPION.copy(), threshold=0.01), None)
    assert not gates.all_passed(results)
    (failure,) = gates.failures(results)
    assert failure.startswith("canary_bad_share: bad share 99.8% against the champion's 11.3% on the same slice")


def test_missing_or_out_of_range_scores_fail():
    short = canary_checks.health_checks(POLICY, night(CHAMPION[:1_500].copy()), None)
    assert verdicts(short)["canary_scores_present"] == "failed"
    wild = CHAMPION.copy()
    wild[0] = 1.5
    assert verdicts(canary_checks.health_checks(POLICY, night(wild), None))["canary_scores_present"] == "failed"


def test_score_distance_is_gated_between_models_and_reported_against_the_rule():
    shifted = np.clip(CHAMPION + 0.15, 0, 1)
    assert verdicts(canary_checks.health_checks(POLICY, night(shifted, threshold=0.65), None))["canary_score_psi"] == "failed"
    against_rule = canary_checks.health_checks(POLICY, night(shifted, threshold=0.65, comparable=False), None)
    assert verdicts(against_rule)["canary_score_psi"] == "reported" and gates.all_passed(against_rule)


def test_slow_scoring_and_scoring_errors_fail():
    assert verdicts(canary_checks.health_checks(POLICY, night(CHAMPION.copy(), seconds=61), None))["canary_scoring"] == "failed"
    failed = canary_checks.scoring_failed(ValueError("feature missing"))
    assert not failed.passed and "ValueError: feature missing" in failed.reason


def test_realized_precision_counts_once_windows_mature():
    worse = canary_checks.Realized(customers=400, canary_precision=0.60, champion_precision=0.72)
    assert not canary_checks.realized_check(POLICY, worse).passed
    close = canary_checks.Realized(customers=400, canary_precision=0.70, champion_precision=0.72)
    assert canary_checks.realized_check(POLICY, close).passed
