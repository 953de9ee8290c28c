"""The ML gates on arrays: the rule baseline at its recall, the champion within its margins, the absolute floors."""

import numpy as np
import pytest
import yaml

from custlabel.config import DEFAULT_PROJECT_DIR
from custlabel.release import performance_gates
from custlabel.training import acceptance, evaluate

ROWS = 3_000


def criteria(**performance: float) -> acceptance.AcceptanceCriteria:
    raw = yaml.safe_load((DEFAULT_PROJECT_DIR / "acceptance.yml").read_text())
    raw["performance"].update(performance)
    return acceptance.parse(yaml.safe_dump(raw))


def world(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Labels (about a third bad) and the hidden risk behind them."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=ROWS)
    y = (rng.random(ROWS) < 1 / (1 + np.exp(-(-1.2 + 2.5 * risk)))).astype(int)
    return y, risk


def noisy(risk: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """Scores in [0, 1] that rank by the risk blurred by noise."""
    blurred = risk + np.random.default_rng(seed).normal(scale=noise, size=risk.size)
    return 1 / (1 + np.exp(-blurred))


def by_name(results) -> dict:
    return {result.name: result for result in results}


def test_a_model_worse_than_the_rule_at_the_rules_recall_fails() -> None:
    y, risk = world()
    weak_model, sharp_rule = noisy(risk, 2.0, 2), noisy(risk, 0.2, 3)
    gate = performance_gates.baseline_gate(y, weak_model, sharp_rule, 0.5)
    assert not gate.passed
    assert gate.figures["model_precision"] < gate.figures["rule_precision"]
    assert gate.figures["gain_ci_low"] <= gate.figures["gain"] <= gate.figures["gain_ci_high"]
    assert "at the rule's recall" in gate.reason and "95% CI" in gate.reason and "300 paired resamples" in gate.reason


def test_a_model_better_than_the_rule_passes() -> None:
    y, risk = world()
    gate = performance_gates.baseline_gate(y, noisy(risk, 0.2, 2), noisy(risk, 2.0, 3), 0.5)
    assert gate.passed and gate.figures["gain_ci_low"] > 0


def test_missing_rule_scores_fail_the_baseline_gate() -> None:
    y, risk = world()
    gate = performance_gates.baseline_gate(y, noisy(risk, 0.2, 2), None, 0.5)
    assert not gate.passed and "run dbt build" in gate.reason


def test_the_bootstrap_is_paired_and_repeatable() -> None:
    y, risk = world()
    model, rule = noisy(risk, 0.5, 2), noisy(risk, 0.6, 3)
    first = performance_gates.baseline_gate(y, model, rule, 0.5, resamples=200, seed=7)
    assert first == performance_gates.baseline_gate(y, model, rule, 0.5, resamples=200, seed=7)
    # the same rows for both sides: the interval of a model against itself is a point
    itself = performance_gates.champion_gate(y, model, 0.5, model, 0.5, criteria(), resamples=50)
    assert itself.figures["precision_ci_low"] == itself.figures["precision_ci_high"] == 0


def test_worse_than_the_champion_beyond_the_margins_fails() -> None:
    y, risk = world()
    champion, challenger = noisy(risk, 0.2, 2), noisy(risk, 2.0, 3)
    gate = performance_gates.champion_gate(y, challenger, 0.5, champion, 0.5, criteria())
    assert not gate.passed
    assert gate.figures["precision_change"] < -0.02
    assert "against the champion on the same rows" in gate.reason and "may drop 0.02" in gate.reason


def test_no_champion_passes_the_champion_gate() -> None:
    y, risk = world()
    gate = performance_gates.champion_gate(y, noisy(risk, 0.2, 2), 0.5, None, None, criteria())
    assert gate.passed and gate.reason == "no champion yet: nothing to compare with"


def test_absolute_gates_catch_a_label_on_almost_everyone() -> None:
    rng = np.random.default_rng(4)
    y, scores = (rng.random(ROWS) < 0.8).astype(int), rng.random(ROWS)
    results = by_name(performance_gates.absolute_gates(y, scores, float(scores.min()), criteria().performance))
    assert results["precision"].passed  # the base rate alone is above the 0.70 floor
    assert not results["lift"].passed and "over base rate" in results["lift"].reason
    assert not results["label_share"].passed and "100.0% of test customers labelled bad" in results["label_share"].reason


def test_performance_gates_name_every_gate() -> None:
    y, risk = world()
    results = performance_gates.performance_gates(y, noisy(risk, 0.2, 2), 0.6, noisy(risk, 2.0, 3), 0.5, None, None, criteria())
    assert [r.name for r in results] == ["precision", "recall", "lift", "label_share", "beats_baseline", "vs_champion"]


def test_the_operating_point_gate_carries_the_policy_reason() -> None:
    rng = np.random.default_rng(5)
    y, scores = (rng.random(ROWS) < 0.8).astype(int), rng.random(ROWS)
    point = evaluate.business_threshold(y, scores, criteria(min_lift=1.2).performance)
    gate = performance_gates.operating_point_gate(point)
    assert not gate.passed
    assert gate.reason.startswith("max_recall_at_precision on validation: no threshold meets")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"min_lift": 1.0, "max_bad_share": 1.0}, "a 'bad' label must carry information"),
        ({"threshold_policy": "fixed_share"}, "fixed_share needs fixed_share"),
        ({"threshold_policy": "fixed_share", "fixed_share": 0.7}, "fixed_share 0.7 is above max_bad_share 0.65 minus"),
        ({"fixed_share": 0.2}, "fixed_share is read only with threshold_policy fixed_share"),
        ({"threshold_policy": "top_k"}, "threshold_policy"),
    ],
)
def test_policy_settings_are_checked(changes: dict, message: str) -> None:
    with pytest.raises(acceptance.AcceptanceError, match=message):
        criteria(**changes)
