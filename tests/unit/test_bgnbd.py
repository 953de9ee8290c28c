"""BG/NBD as published: the fit recovers the parameters of customers drawn from its process (observed from their
first purchase), and its predictions match what the process did next."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from custlabel.training import bgnbd
from helpers.bgnbd_process import simulate

TRUE = bgnbd.BGNBDParameters(r=0.6, alpha=25.0, a=0.9, b=2.5)
WINDOW = 90.0


@pytest.fixture(scope="module")
def drawn() -> tuple[bgnbd.Summary, np.ndarray]:
    T = np.random.default_rng(7).integers(60, 366, 6000).astype(float)
    return simulate(TRUE, T, WINDOW, seed=11)


@pytest.fixture(scope="module")
def fitted(drawn) -> bgnbd.BGNBDParameters:
    return bgnbd.fit(drawn[0])


def test_fit_recovers_the_parameters_of_the_process(fitted) -> None:
    for name, value in TRUE.as_dict().items():
        assert fitted.as_dict()[name] == pytest.approx(value, rel=0.2), name


def test_fit_beats_the_true_parameters_likelihood_only_by_noise(drawn, fitted) -> None:
    data = drawn[0]
    gain = bgnbd.log_likelihood(fitted, data).sum() - bgnbd.log_likelihood(TRUE, data).sum()
    # the maximum is at least as likely as the truth, and not by more than a few parameters' worth
    assert 0 <= gain < 10


def test_predictions_match_what_the_process_did_next(drawn, fitted) -> None:
    data, later = drawn
    expected = bgnbd.expected_purchases(fitted, data, WINDOW)
    quiet = bgnbd.probability_no_purchase(fitted, data, WINDOW)
    assert expected.mean() == pytest.approx(later.mean(), rel=0.1)
    assert quiet.mean() == pytest.approx((later == 0).mean(), abs=0.03)
    # among the customers it calls likely quiet, more were quiet
    likely = quiet > np.median(quiet)
    assert (later[likely] == 0).mean() > (later[~likely] == 0).mean() + 0.2


def test_no_repeat_purchase_means_alive_and_a_long_silence_means_likely_gone(fitted) -> None:
    # the published model: a customer can only drop out after a repeat purchase
    data = bgnbd.Summary(x=np.array([0.0, 5.0, 5.0]), t_x=np.array([0.0, 350.0, 20.0]), T=np.array([365.0] * 3))
    alive = bgnbd.probability_alive(fitted, data)
    assert alive[0] == 1.0
    assert alive[1] > 0.8 > 0.2 > alive[2]


def _features(data: bgnbd.Summary) -> pd.DataFrame:
    return pd.DataFrame(
        {"days_since_first_purchase": data.T, "days_since_last_purchase": data.T - data.t_x, "repeat_purchases_count": data.x}
    )


def test_summary_counts_from_the_first_purchase() -> None:
    # first purchase 400 days ago, last 10 days ago, 4 purchases after the first; one purchase only, 100 days ago
    features = pd.DataFrame(
        {"days_since_first_purchase": [400.0, 100.0], "days_since_last_purchase": [10.0, 100.0], "repeat_purchases_count": [4.0, 0.0]}
    )
    data = bgnbd.summarise(features)
    assert data.T.tolist() == [400.0, 100.0]
    assert data.x.tolist() == [4.0, 0.0]
    assert data.t_x.tolist() == [390.0, 0.0]


def test_a_customer_without_a_purchase_has_no_summary() -> None:
    features = pd.DataFrame(
        {"days_since_first_purchase": [np.nan, 30.0], "days_since_last_purchase": [np.nan, 5.0], "repeat_purchases_count": [np.nan, 1.0]}
    )
    assert bgnbd.has_purchase(features).tolist() == [False, True]
    with pytest.raises(ValueError, match="1 customers have no purchase, so no BG/NBD summary"):
        bgnbd.summarise(features)


def test_transformer_learns_from_customers_with_a_purchase_and_says_nothing_of_the_others(drawn) -> None:
    features = _features(drawn[0])
    never = pd.DataFrame(np.nan, index=range(500), columns=bgnbd.INPUT_FEATURES)
    mixed = pd.concat([features, never], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step = bgnbd.BGNBDFeatures(window_days=90).fit(mixed)
        added = step.transform(mixed)
    assert added.shape == (len(mixed), 2)
    assert list(step.get_feature_names_out()) == bgnbd.OUTPUT_FEATURES
    # the customers without a purchase change nothing in the fit
    alone = bgnbd.fit(drawn[0]).as_dict()
    assert step.params_.as_dict() == pytest.approx(alone, rel=1e-4)
    assert step.params_.r == pytest.approx(TRUE.r, rel=0.2)
    assert np.isnan(added[len(features):]).all()
    bought = added[: len(features)]
    assert ((bought[:, 0] > 0) & (bought[:, 0] <= 1)).all() and (bought[:, 1] >= 0).all()
