"""The demo's payment delays and the closed form its truth integrates them with."""

from __future__ import annotations

import numpy as np
import pytest

from custlabel.demo import truth, world


@pytest.mark.parametrize("p_default", [0.005, world.BASE_DEFAULT_PROBABILITY, 0.08, 0.3])
def test_paid_within_integral_matches_the_generated_delays(p_default: float) -> None:
    p = np.full(400_000, p_default)
    delays = world.payment_delays(np.random.default_rng(0), p)
    payment = truth._Payment.of(p[:1])
    for x in (5.0, 20.0, 45.0, 90.0, 120.0):
        # The integral over [0, x] of P(paid within v days) is E[(x - delay)+].
        expected = np.maximum(x - delays, 0).mean()
        assert truth._paid_within_integral(x, payment)[0] == pytest.approx(expected, rel=0.01, abs=0.02)


def test_customers_at_risk_pay_later_even_on_time() -> None:
    p_default = np.array([0.002, world.BASE_DEFAULT_PROBABILITY, 0.05, 0.2])
    mean_delay = world.ON_TIME_DELAY_SHAPE * world.on_time_delay_scale(p_default)
    assert np.all(np.diff(mean_delay) > 0)
    assert mean_delay[1] == pytest.approx(world.ON_TIME_DELAY_MEAN_DAYS)
