"""The alert rules file: validated on load, judged k of n."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from custlabel.config import get_settings
from custlabel.monitoring import alerts
from custlabel.release import release_policy
from custlabel.training import acceptance

ROOT = Path(__file__).resolve().parents[2]
NIGHT = date(2026, 8, 1)
RULE = alerts.Rule(name="drift", metric="feature_psi_max", direction="above", threshold=0.25, k=2, n=3)


def values(*psi: float | None) -> list[tuple[date, float | None]]:
    """Values of the last nights, newest (NIGHT) first."""
    return [(NIGHT - timedelta(days=i), value) for i, value in enumerate(psi)]


def test_the_repository_rules_load():
    config = alerts.load(settings=get_settings())
    assert {rule.metric for rule in config.rules} <= set(alerts.METRICS)
    assert any(rule.name == "feature_drift" for rule in config.rules)
    assert config.feeding("data") == ["feature_drift", "score_drift"]
    assert config.feeding("performance") == ["estimated_precision_low", "realized_precision_low"]


def test_every_metric_reads_a_monitoring_mart_and_is_explained_in_alerts_yml():
    schema = yaml.safe_load((ROOT / "models" / "marts" / "monitoring" / "_monitoring__models.yml").read_text())
    marts = {model["name"] for model in schema["models"]}
    explained = (ROOT / alerts.FILE_NAME).read_text()
    for metric, (mart, _query) in alerts.METRICS.items():
        assert mart in marts, f"metric {metric} reads {mart}, not a model of models/marts/monitoring"
        assert f"#   {metric} " in explained, f"metric {metric} is not in the list at the top of alerts.yml"


@pytest.mark.parametrize(("text", "named"), [
    ("rules: [{name: a, metric: feature_psi, direction: above, threshold: 1, k: 1, n: 1}]", "rules.0: Value error, unknown metric 'feature_psi'"),
    ("rules: [{name: a, metric: score_psi, direction: up, threshold: 1, k: 1, n: 1}]", "rules.0.direction"),
    ("rules: [{name: a, metric: score_psi, direction: above, threshold: 1, k: 3, n: 2}]", "k (3) cannot exceed n (2)"),
    ("rules: [{name: a, metric: score_psi, direction: above, threshold: 1, k: 1, n: 1, kk: 2}]", "rules.0.kk: unknown key"),
    ("rules: [{name: a, metric: score_psi, direction: above, threshold: 1, k: 1, n: 1},"
     " {name: a, metric: score_psi, direction: below, threshold: 1, k: 1, n: 1}]", "repeated: a"),
    ("rules: []", "rules: List should have at least 1 item"),
    ("- just a list", "must be a mapping"),
    ("rules: [{name: a, metric: score_psi, direction: above, threshold: 1, k: 1, n: 1, trigger: drift}]",
     "rules.0: Value error, unknown trigger 'drift': expected one of data, performance, or no trigger for a rule that only alerts"),
])
def test_a_bad_rule_is_named(text, named):
    with pytest.raises(alerts.AlertConfigError, match="alerts.yml") as caught:
        alerts.parse(text)
    assert named in str(caught.value)


def test_a_rule_fires_on_k_of_the_last_n_nights():
    assert alerts.judge(RULE, NIGHT, values(0.3, 0.1, 0.1), was_firing=False).state == alerts.OK
    assert alerts.judge(RULE, NIGHT, values(0.3, 0.1, 0.4), was_firing=False).state == alerts.FIRING
    assert alerts.judge(RULE, NIGHT, values(0.3, 0.3), was_firing=False).state == alerts.FIRING
    # the fourth night back is outside the window
    assert alerts.judge(RULE, NIGHT, values(0.3, 0.1, 0.1, 0.9), was_firing=True).state == alerts.RESOLVED


def test_missing_values_never_breach_and_tonight_is_reported():
    alert = alerts.judge(RULE, NIGHT, values(None, 0.3, 0.3)[1:], was_firing=False)
    assert alert.value is None and alert.breaches == 2 and alert.state == alerts.FIRING
    below = alerts.Rule(name="p", metric="estimated_precision", direction="below", threshold=0.7, k=1, n=1)
    assert alerts.judge(below, NIGHT, values(0.65), was_firing=False).value == 0.65
    assert alerts.judge(below, NIGHT, values(None), was_firing=False).state == alerts.OK


def test_the_shipped_performance_alerts_do_not_retrain_a_champion_its_canary_found_healthy():
    """A rule feeding the performance trigger is a retraining floor: stricter than the canary's own floors, it would
    retrain a version the canary has just promoted, every few nights."""
    settings = get_settings()
    min_precision = acceptance.load(settings=settings).performance.min_precision
    policy = release_policy.load(settings)
    floors = {
        "estimated_precision": min_precision - policy.canary.estimated_margin,
        "realized_precision": min_precision,
    }
    assert policy.triggers.performance.estimated_margin == policy.canary.estimated_margin
    for rule in alerts.load(settings=settings).rules:
        if rule.trigger == "performance":
            assert rule.threshold <= floors[rule.metric] + 1e-9, (
                f"alerts.yml's {rule.name} fires below {rule.threshold:.0%}, the canary passes from {floors[rule.metric]:.0%}"
            )
