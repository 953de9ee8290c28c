"""Drift and estimated performance marts on the built demo warehouse, against the same figures computed in Python."""

from __future__ import annotations

import re
from datetime import date

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from custlabel import browser
from custlabel.config import Settings
from custlabel.monitoring import drift_reference, headline_figures, nightly_report
from custlabel.scoring import writeback
from custlabel.training.features import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    SENSITIVE_ATTRIBUTES,
)
from custlabel.warehouse import db, dbt_runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 6, 30)  # DEMO_END_DATE of the built warehouse
MODEL, VERSION = "customer-labels", "drift-test"
MARTS = "analytics_monitoring"
DRIFT_MARTS = ["feature_bin_shares", "feature_drift", "score_drift", "performance_estimates", "estimated_vs_realized"]


def fetch(settings: Settings, query: str, params: list | None = None) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute(query, params).fetchall()


def frame(settings: Settings, query: str, params: dict | None = None) -> pd.DataFrame:
    return db.read_frame(settings, query, params)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    expected, actual = np.maximum(expected, 1e-4), np.maximum(actual, 1e-4)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def python_psi(bins: pd.DataFrame, values: pd.Series) -> float:
    """PSI of tonight's values against stored bins, binned in Python as the docstring of drift_reference says."""
    bins = bins.sort_values("bin")
    if bins["kind"].iloc[0] == "numeric":
        edges = bins.loc[bins["bin"] >= 2, "lower_edge"].to_numpy(float)
        numbers = np.where(values.isna(), 0, np.searchsorted(edges, values.fillna(0).to_numpy(float), side="right") + 1)
    else:
        position = {category: number for number, category in zip(bins["bin"], bins["category"]) if number > 0}
        numbers = np.array([0 if pd.isna(v) else position.get(str(v), -1) for v in values])
    tonight = pd.Series(numbers).value_counts(normalize=True)
    every_bin = sorted(set(bins["bin"]) | set(tonight.index))
    expected = bins.set_index("bin")["reference_share"].reindex(every_bin, fill_value=0).to_numpy()
    return psi(expected, tonight.reindex(every_bin, fill_value=0).to_numpy())


@pytest.fixture(scope="module")
def drift_night(built_warehouse: Settings):
    """A version whose reference is two older nights of training rows, labelling NIGHT with rule scores."""
    settings = built_warehouse
    nights = [d for (d,) in fetch(settings, "select distinct as_of_date from analytics.training_set order by 1")][:2]
    training = frame(settings, "select * from analytics.training_set where as_of_date = any(:nights)", {"nights": nights})
    drift_reference.store(settings, MODEL, VERSION, training)
    with db.connect(settings) as conn:
        writeback.ensure_history(conn, "analytics")
        conn.execute(
            "insert into analytics.customer_label_history (customer_id, label, score, threshold, model_name,"
            " model_version, as_of_date) select customer_id, label, score, 0.5, %s, %s, as_of_date"
            " from analytics.rule_baseline_scores where as_of_date = %s",
            [MODEL, VERSION, NIGHT],
        )
    dbt_runner.run(settings, ["build", "--select", "label_rates", *DRIFT_MARTS], target="prod", as_of_date=str(NIGHT))
    yield settings, training, nights
    with db.connect(settings) as conn:
        conn.execute("delete from analytics.customer_label_history where model_version = %s", [VERSION])
        conn.execute(f"delete from {MARTS}.model_reference_bins where model_version = %s", [VERSION])
    dbt_runner.run(settings, ["build", "--select", "label_rates", *DRIFT_MARTS, "--full-refresh"], target="prod",
            as_of_date=str(NIGHT))


def test_reference_bins_cover_the_training_rows(drift_night):
    settings, training, _ = drift_night
    bins = frame(settings, f"select * from {MARTS}.model_reference_bins where model_version = :v", {"v": VERSION})
    features = set(bins["feature"])
    assert features == set(NUMERIC_FEATURES + CATEGORICAL_FEATURES + SENSITIVE_ATTRIBUTES)
    rows = bins[bins["kind"] != "sensitive"].groupby("feature")["reference_rows"].sum()
    assert (rows == len(training)).all()
    shares = bins.groupby("feature")["reference_share"].sum()
    assert np.allclose(shares, 1.0)
    assert set(bins.loc[bins["kind"] == "sensitive", "feature"]) == set(SENSITIVE_ATTRIBUTES)
    tenure = bins[bins["feature"] == "tenure_days"].sort_values("bin")
    assert tenure["bin"].tolist()[0] == 0 and len(tenure) >= 6  # null bin, then decile bins


def test_feature_psi_matches_python(drift_night):
    settings, _, _ = drift_night
    drift = frame(settings, f"select feature, feature_kind, psi, psi_since_first_night, customers from {MARTS}.feature_drift"
                            " where as_of_date = :night and model_version = :v", {"night": NIGHT, "v": VERSION})
    bins = frame(settings, f"select * from {MARTS}.model_reference_bins where model_version = :v", {"v": VERSION})
    tonight = frame(settings, "select f.* from analytics.customer_features as f join analytics.customer_label_history as h"
                              " using (customer_id, as_of_date) where h.as_of_date = :night and h.model_version = :v",
                    {"night": NIGHT, "v": VERSION})
    assert len(drift) == len(NUMERIC_FEATURES + CATEGORICAL_FEATURES + SENSITIVE_ATTRIBUTES)
    assert (drift["customers"] == len(tonight)).all()
    assert (drift["psi_since_first_night"] == 0).all()  # the version's first night is its live reference
    for row in drift.itertuples():
        expected = python_psi(bins[bins["feature"] == row.feature], tonight[row.feature])
        assert row.psi == pytest.approx(expected, abs=1e-9), row.feature
    kinds = dict(zip(drift["feature"], drift["feature_kind"], strict=True))
    assert {kinds[c] for c in SENSITIVE_ATTRIBUTES} == {"sensitive"} and kinds["segment"] == "categorical"
    # tenure grows with time: tonight's customers are older than the training rows of a year before
    assert drift.set_index("feature").loc["tenure_days", "psi"] > 0.1


def test_score_drift_is_zero_on_the_reference_night(drift_night):
    settings, _, _ = drift_night
    rows = fetch(settings, f"select reference_night, score_psi, bad_rate_change from {MARTS}.score_drift"
                           " where model_version = %s", [VERSION])
    assert rows == [(NIGHT, pytest.approx(0.0, abs=1e-12), pytest.approx(0.0))]


def test_estimates_are_the_mean_score_of_the_labelled_bad(drift_night):
    settings, _, _ = drift_night
    estimated = fetch(settings, f"select estimated_precision, estimated_recall, matured from {MARTS}.estimated_vs_realized"
                                " where model_version = %s", [VERSION])
    direct = fetch(settings, "select avg(score) filter (where label = 'bad'),"
                             " sum(score) filter (where label = 'bad') / sum(score)"
                             " from analytics.customer_label_history where model_version = %s", [VERSION])
    assert estimated == [(pytest.approx(direct[0][0]), pytest.approx(direct[0][1]), False)]


needs_chromium = pytest.mark.skipif(
    browser.executable() is None, reason="chromium is not installed (apt-get install -y chromium): browser test skipped"
)


def drawn(dom: str) -> tuple[int, str | None]:
    """The plots the page's script saw drawn, and the script errors it recorded."""
    root = re.search(r"<html[^>]*>", dom).group(0)
    plots = re.search(r'data-plots-drawn="(\d+)"', root)
    errors = re.search(r'data-script-errors="([^"]*)"', root)
    return (int(plots.group(1)) if plots else 0), (errors.group(1) if errors else None)


@needs_chromium
def test_a_script_error_in_a_page_is_caught(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(nightly_report.PAGE.split("</script>")[0] + "</script><script>undefinedFunction();</script></head><body></body></html>")
    assert drawn(browser.dump_dom(page).dom)[1].startswith("Uncaught ReferenceError: undefinedFunction")


@needs_chromium
def test_the_report_draws_every_plot_in_headless_chromium(drift_night, tmp_path):
    settings, _, _ = drift_night
    path = nightly_report.write(settings, "analytics", NIGHT, ["a headline line"])
    assert path == settings.local_dir / "reports" / f"monitoring-analytics-{NIGHT}.html"
    rendered = browser.dump_dom(path)
    plots, errors = drawn(rendered.dom)
    assert errors is None and plots == 9
    assert "tenure_days" in rendered.dom and "a headline line" in rendered.dom
    shot = plt.imread(browser.screenshot(path, tmp_path / "nightly_report.png"))
    ink = (shot[..., :3] < 0.9).any(axis=2)
    assert shot[..., :3].std() > 0.05 and ink.mean() > 0.02  # not a blank page
    assert ink[: shot.shape[0] // 2].mean() > 0.02 and ink[shot.shape[0] // 2 :].mean() > 0.01  # plots all the way down


def test_monitor_prints_the_headline_and_opens_the_report(drift_night, monkeypatch):
    settings, _, _ = drift_night
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    text = headline_figures.report(settings, target="prod", as_of_date=NIGHT)
    assert f"estimated {NIGHT}: {MODEL} v{VERSION}, precision" in text
    assert "largest feature drift, PSI since the version's reference night (against training): " in text
    path = headline_figures.open_report(settings, target="prod", as_of_date=NIGHT)
    assert opened == [path.as_uri()] and path.read_text().startswith("<!doctype html>")
