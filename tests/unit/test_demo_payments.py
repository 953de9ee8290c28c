"""The demo's payment delays and the closed form its truth integrates them with."""

from __future__ import annotations

import numpy as np
import pytest

from custlabel import demo


def _simulated_delays(rng: np.random.Generator, payment: demo._Payment, n: int) -> np.ndarray:
    """Delays (days) of invoices that will be paid, drawn the way the generator draws them."""
    late = rng.random(n) < payment.late_share
    on_time = rng.gamma(demo.ON_TIME_DELAY_SHAPE, payment.delay_scale, n)
    return np.where(late, demo.PAYMENT_TERMS_DAYS + rng.uniform(1, 40, n), on_time)


@pytest.mark.parametrize("p_default", [0.005, demo.BASE_DEFAULT_PROBABILITY, 0.08, 0.3])
def test_paid_within_integral_matches_simulated_delays(p_default: float) -> None:
    rng = np.random.default_rng(0)
    p = np.array([p_default])
    payment = demo._Payment(p, np.minimum(2 * p, 1.0), demo.on_time_delay_scale(p))
    delays = _simulated_delays(rng, payment, 400_000)
    for x in (5.0, 20.0, 45.0, 90.0, 120.0):
        # The integral over [0, x] of P(paid within v days) is E[(x - delay)+].
        expected = np.maximum(x - delays, 0).mean()
        assert demo._paid_within_integral(x, payment)[0] == pytest.approx(expected, rel=0.01, abs=0.02)


def test_customers_at_risk_pay_later_even_on_time() -> None:
    p_default = np.array([0.002, demo.BASE_DEFAULT_PROBABILITY, 0.05, 0.2])
    mean_delay = demo.ON_TIME_DELAY_SHAPE * demo.on_time_delay_scale(p_default)
    assert np.all(np.diff(mean_delay) > 0)
    assert mean_delay[1] == pytest.approx(demo.ON_TIME_DELAY_MEAN_DAYS)
