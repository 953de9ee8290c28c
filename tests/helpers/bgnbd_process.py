"""Customers drawn from the BG/NBD process itself, as published: observed from their first purchase."""

from __future__ import annotations

import numpy as np

from custlabel.training.bgnbd import BGNBDParameters, Summary


def simulate(
    params: BGNBDParameters, T: np.ndarray, holdout_days: float, seed: int = 0
) -> tuple[Summary, np.ndarray]:
    """x, t_x, T of each customer whose first purchase was T days ago, and their purchases in (T, T + holdout_days].

    The first purchase, at time 0, starts the observation and is not counted in x; after
    each repeat purchase the customer drops out with their probability.
    """
    rng = np.random.default_rng(seed)
    customers = len(T)
    rate = rng.gamma(params.r, 1.0 / params.alpha, customers)
    dropout = rng.beta(params.a, params.b, customers)
    x, t_x, later = np.zeros(customers), np.zeros(customers), np.zeros(customers)
    for i in range(customers):
        now = rng.exponential(1.0 / rate[i])
        while now <= T[i] + holdout_days:
            if now <= T[i]:
                x[i] += 1
                t_x[i] = now
            else:
                later[i] += 1
            if rng.random() < dropout[i]:
                break
            now += rng.exponential(1.0 / rate[i])
    return Summary(x, t_x, np.asarray(T, float)), later
