"""demo_truth.bad_probability, the oracle of the training benchmark, agrees with the labels dbt builds."""

from __future__ import annotations

import pytest

from custlabel.config import Settings
from custlabel.warehouse import db

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRUTH_AGAINST_LABELS = """
    select ntile(5) over (order by truth.p_bad) as quintile, truth.p_bad, outcomes.is_bad::int as is_bad
    from demo_truth.bad_probability as truth
    join analytics.customer_outcomes as outcomes using (customer_id, as_of_date)
"""


def test_true_probabilities_are_calibrated_against_the_built_labels(built_warehouse: Settings) -> None:
    rows = db.read_frame(built_warehouse, TRUTH_AGAINST_LABELS)
    assert len(rows) > 20_000
    assert rows["p_bad"].mean() == pytest.approx(rows["is_bad"].mean(), abs=0.02)
    by_quintile = rows.groupby("quintile")[["p_bad", "is_bad"]].mean()
    assert (by_quintile["p_bad"] - by_quintile["is_bad"]).abs().max() < 0.04
    # The truth ranks customers: its top quintile is far worse than its bottom one.
    assert by_quintile["is_bad"].iloc[-1] - by_quintile["is_bad"].iloc[0] > 0.5
