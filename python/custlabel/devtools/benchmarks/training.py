"""Training figures on the demo data: model and rule baseline against the oracle, and wall time."""

from __future__ import annotations

import time

import pandas as pd
from psycopg import sql

from custlabel.config import Settings
from custlabel.release import registration
from custlabel.training import evaluate, model_search
from custlabel.training.features import KEY_COLUMNS, LABEL_COLUMN
from custlabel.warehouse import db

# Issue 24's targets: 95% of the oracle's precision, calibrated on the newest matured night, trained in 10 minutes.
ORACLE_SHARE_TARGET = 0.95
CALIBRATION_ERROR_TARGET = 0.02
WALL_TIME_TARGET_SECONDS = 600


def verdict(value: float, target: float, higher_is_better: bool, unit: str = "") -> str:
    """'target met' or by how much it is missed, in the figure's own unit."""
    short = target - value if higher_is_better else value - target
    return "target met" if short <= 0 else f"target NOT met, short by {short:.3g}{unit}"


def labelling_calibration(result: model_search.TrainResult) -> tuple[str, float]:
    """Which version labels and its calibration error on the newest matured night (the test night)."""
    if result.labels_with_refit:
        return "refit", result.refit.calibration.expected_calibration_error
    checked = result.calibration.recalibrated_test or result.calibration.test
    return "held-out version", checked.expected_calibration_error


def true_probabilities(settings: Settings, rows: pd.DataFrame) -> pd.Series:
    """p_bad from demo_truth.bad_probability for these (customer_id, as_of_date) rows, aligned to them."""
    query = sql.SQL(
        "select customer_id, as_of_date, p_bad from {table} where as_of_date = :as_of_date and customer_id = any(:ids)"
    ).format(table=sql.Identifier("demo_truth", "bad_probability"))
    frames = [
        db.read_frame(settings, query.as_string(), {"as_of_date": day, "ids": group["customer_id"].tolist()})
        for day, group in rows.groupby("as_of_date")
    ]
    truth = pd.concat(frames, ignore_index=True)
    truth["as_of_date"] = pd.to_datetime(truth["as_of_date"]).dt.date
    merged = rows[KEY_COLUMNS].merge(truth, on=KEY_COLUMNS, how="left", validate="one_to_one")
    return merged["p_bad"]


def run(settings: Settings, config: model_search.TrainConfig | None = None) -> list[str]:
    """Train once (registering a challenger) and return the figures as printable lines."""
    started = time.perf_counter()
    released = registration.train_and_register(settings, config)
    wall = time.perf_counter() - started
    result = released.trained
    scores = result.test_scores
    y = scores[LABEL_COLUMN].to_numpy()
    recall = result.test_metrics.recall
    model = result.test_metrics.precision
    p_bad = true_probabilities(settings, scores)
    lines = [
        f"training: {len(result.data.train)} train rows over {len(result.data.plan.train_dates)} as_of_dates "
        f"({result.data.sampling}); test {result.data.plan.test_date}, {len(scores)} rows, bad rate {y.mean():.3f}",
        f"chosen model: {result.selection.chosen.name}, threshold {result.threshold:.4f}, version {released.version}",
        f"test precision at recall {recall:.3f}: model {model:.3f}",
    ]
    if result.baseline_metrics is not None:
        rule = evaluate.precision_at_recall(y, scores["baseline_score"].to_numpy(), recall)
        lines.append(
            f"test precision at recall {recall:.3f}: rule baseline {rule:.3f} "
            f"(at its own threshold: precision {result.baseline_metrics.precision:.3f}, recall {result.baseline_metrics.recall:.3f}); "
            f"model beats it: {'yes' if model > rule else 'NO'}"
        )
    if p_bad.isna().any():
        lines.append(f"oracle: demo_truth has no p_bad for {int(p_bad.isna().sum())} test rows; not computed")
    else:
        oracle = evaluate.precision_at_recall(y, p_bad.to_numpy(), recall)
        share = model / oracle
        lines.append(
            f"test precision at recall {recall:.3f}: oracle (ranking on demo_truth p_bad) {oracle:.3f}; "
            f"model/oracle {share:.1%} (target >= {ORACLE_SHARE_TARGET:.0%}: "
            f"{verdict(share * 100, ORACLE_SHARE_TARGET * 100, True, ' points')})"
        )
    if result.refit is not None:
        lines.append(result.refit.note)
    who, error = labelling_calibration(result)
    lines.append(
        f"calibration error (ECE) of the labelling {who} on the newest matured night {result.data.plan.test_date}: "
        f"{error:.4f} (target <= {CALIBRATION_ERROR_TARGET}: {verdict(error, CALIBRATION_ERROR_TARGET, False)})"
    )
    lines.append(
        f"training wall time: {wall:.1f} s (target < {WALL_TIME_TARGET_SECONDS} s at 1,000,000 customers: "
        f"{verdict(wall, WALL_TIME_TARGET_SECONDS, False, ' s')})"
    )
    return lines
