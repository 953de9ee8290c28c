"""BG/NBD: the fit recovers the parameters of data drawn from its own process, and its predictions match that process."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from custlabel import bgnbd

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


def test_no_purchase_means_alive_and_a_long_silence_means_likely_gone(fitted) -> None:
    data = bgnbd.Summary(x=np.array([0.0, 5.0, 5.0]), t_x=np.array([0.0, 350.0, 20.0]), T=np.array([365.0] * 3))
    alive = bgnbd.probability_alive(fitted, data)
    assert alive[0] == 1.0
    assert alive[1] > 0.8 > 0.2 > alive[2]


def test_summary_from_features_counts_from_the_lookback_or_the_account() -> None:
    features = pd.DataFrame(
        {"tenure_days": [1000.0, 100.0, 50.0], "days_since_last_sale": [10.0, np.nan, 400.0], "sales_count_365d": [4.0, 0.0, 0.0]}
    )
    data = bgnbd.summarise(features)
    assert data.T.tolist() == [365.0, 100.0, 50.0]
    assert data.x.tolist() == [4.0, 0.0, 0.0]
    assert data.t_x.tolist() == [355.0, 0.0, 0.0]


def test_transformer_learns_the_parameters_and_adds_two_columns(drawn) -> None:
    data = drawn[0]
    features = pd.DataFrame({"tenure_days": data.T, "days_since_last_sale": data.T - data.t_x, "sales_count_365d": data.x})
    features.loc[data.x == 0, "days_since_last_sale"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step = bgnbd.BGNBDFeatures(window_days=90).fit(features)
        added = step.transform(features)
    assert added.shape == (len(features), 2)
    assert list(step.get_feature_names_out()) == bgnbd.OUTPUT_FEATURES
    assert step.params_.r == pytest.approx(TRUE.r, rel=0.2)
    assert ((added[:, 0] > 0) & (added[:, 0] <= 1)).all() and (added[:, 1] >= 0).all()
