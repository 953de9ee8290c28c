"""release.yml: the canary and trigger settings, validated on load with errors that name the key."""

from __future__ import annotations

import pytest

from custlabel.config import get_settings
from custlabel.release import release_policy

VALID = """
canary:
  {percent: 10, nights: 3, max_validation_psi: 0.25, estimated_margin: 0.05, max_scoring_seconds: 900,
   max_precision_drop: 0.05, against_champion: {max_bad_share_gap: 0.1, max_score_psi: 0.25}}
triggers:
  data: {max_score_psi: 0.1, drift_nights: 2, window_nights: 3, min_new_matured_labels: 50000}
  performance: {min_customers_with_outcome: 100, estimated_margin: 0.05}
  age: {max_days: 365}
"""


def test_the_repository_policy_is_valid():
    policy = release_policy.load(settings=get_settings())
    assert 0 < policy.canary.percent < 100 and policy.canary.nights >= 1


def test_a_valid_policy_parses():
    policy = release_policy.parse(VALID)
    assert (policy.canary.percent, policy.triggers.data.drift_nights, policy.triggers.age.max_days) == (10, 2, 365)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("percent: 10", "percent: 150"), "canary.percent: Input should be less than 100"),
        (("nights: 3", "nights: 0"), "canary.nights: Input should be greater than or equal to 1"),
        (("drift_nights: 2", "drift_nights: 5"), "drift_nights (5) cannot exceed window_nights (3)"),
        (("max_days: 365", "max_dayz: 365"), "triggers.age.max_dayz: unknown key (typo?)"),
        (("max_validation_psi: 0.25", "max_validation_psi: 0.25, max_bad_share_gap: 0.1"),
         "canary.max_bad_share_gap moved to canary.against_champion.max_bad_share_gap"),
    ],
)
def test_a_bad_value_is_named(change, message):
    with pytest.raises(release_policy.ReleasePolicyError, match="release.yml is invalid") as error:
        release_policy.parse(VALID.replace(*change))
    assert message in str(error.value)


def test_a_missing_file_says_who_keeps_it(tmp_path):
    with pytest.raises(release_policy.ReleasePolicyError, match="the ML engineer keeps it in release.yml"):
        release_policy.read_file(tmp_path / "release.yml")
