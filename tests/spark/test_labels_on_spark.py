"""Scoring and write-back on Spark: the Python engine's scores, and the Postgres write-back's contract."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from custlabel.config import get_settings, schema_for
from custlabel.scoring import on_spark, reasons, score, writeback
from custlabel.training.features import MODEL_FEATURES
from custlabel.warehouse.spark_session import local_session
from helpers.scoring import fit_model, synthetic_frame

pytestmark = pytest.mark.spark

NIGHT = dt.date(2026, 6, 1)
DATABASE = schema_for("spark")


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory):
    local = tmp_path_factory.mktemp("spark-local")
    session = local_session(get_settings({"CUSTLABEL_LOCAL_DIR": str(local)}))
    yield session
    session.stop()


def _night(frame: pd.DataFrame, night: dt.date) -> pd.DataFrame:
    keyed = frame.copy()
    keyed.insert(0, "customer_id", [f"C{n:05d}" for n in range(len(frame))])
    keyed.insert(1, "as_of_date", night)
    return keyed


def _labels_in_python(model, explainer, frame: pd.DataFrame) -> pd.DataFrame:
    batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    return score.label_batch(model, explainer, batch).to_pandas()


@pytest.mark.parametrize("kind", ["logreg", "hgb"])
def test_spark_labels_as_the_python_engine_does(spark, kind: str) -> None:
    frame = synthetic_frame(2000, seed=11)
    model = fit_model(frame, kind, threshold=0.4)
    explainer = reasons.build_reason_model(model.pipeline, MODEL_FEATURES, frame[MODEL_FEATURES])
    night = _night(frame, NIGHT)
    on_spark_rows = on_spark.label_night(spark.createDataFrame(night), model, explainer).toPandas()
    in_python = _labels_in_python(model, explainer, night)
    on_spark_rows = on_spark_rows.sort_values("customer_id").reset_index(drop=True)
    assert len(on_spark_rows) == len(night)
    np.testing.assert_allclose(on_spark_rows["score"], model.scores(night), atol=1e-6, rtol=0)
    for column in ("customer_id", "label", "model_name", "model_version", "reason_1", "reason_2", "reason_3"):
        assert on_spark_rows[column].tolist() == in_python[column].tolist(), column
    assert set(on_spark_rows["label"]) == {"good", "bad"}


def _labels(spark, night: dt.date, customers: int, bad_every: int):
    rows = [(f"C{n:05d}", "bad" if n % bad_every == 0 else "good", 0.9 if n % bad_every == 0 else 0.1, 0.5,
             "customer-labels", "1", night, None, None, None) for n in range(customers)]
    return spark.createDataFrame(rows, on_spark.LABEL_SCHEMA)


def _shown(spark) -> tuple[dt.date, int]:
    row = spark.sql(f"select max(as_of_date), count(*) from {DATABASE}.customer_labels").first()
    return row[0], row[1]


def _history(spark) -> dict[dt.date, int]:
    rows = spark.sql(f"select as_of_date, count(*) from {DATABASE}.customer_label_history group by 1").collect()
    return {row[0]: row[1] for row in rows}


def test_publishing_keeps_the_history_and_shows_one_night(spark) -> None:
    second = NIGHT + dt.timedelta(days=1)
    on_spark.publish_night(spark, DATABASE, _labels(spark, NIGHT, 100, 5), NIGHT, expected_rows=100)
    assert _shown(spark) == (NIGHT, 100)
    result = on_spark.publish_night(spark, DATABASE, _labels(spark, second, 100, 4), second, expected_rows=100)
    assert (result.bad_rate, result.previous_bad_rate, result.previous_as_of_date) == (0.25, 0.2, NIGHT)
    assert _shown(spark) == (second, 100)
    on_spark.publish_night(spark, DATABASE, _labels(spark, second, 100, 4), second, expected_rows=100)
    assert _history(spark) == {NIGHT: 100, second: 100}
    assert len(on_spark._label_tables(spark, DATABASE)) == 2  # tonight's, and the one a reader may still be reading


@pytest.fixture(scope="module")
def night_before(spark) -> dt.date:
    """A night published before each failing one (25% bad)."""
    night = NIGHT + dt.timedelta(days=4)
    on_spark.publish_night(spark, DATABASE, _labels(spark, night, 100, 4), night, expected_rows=100)
    return night


@pytest.mark.parametrize(
    ("labels", "expected_rows", "message"),
    [
        (lambda spark, night: _labels(spark, night, 100, 1), 100, "above the 65% that acceptance.yml allows"),
        (lambda spark, night: _labels(spark, night, 100, 4).union(_labels(spark, night, 1, 4)), 101,
         "1 customers have more than one label tonight"),
        (lambda spark, night: _labels(spark, night, 90, 4), 100, "tonight's labels have 90 rows but 100"),
        (lambda spark, night: _labels(spark, night, 100, 2), 100, "bad rate 50.0% moved more than 10.0%"),
    ],
)
def test_a_night_that_fails_a_check_leaves_readers_and_history_as_they_were(
    spark, night_before: dt.date, labels, expected_rows: int, message: str
) -> None:
    night = night_before + dt.timedelta(days=1)
    shown, history, tables = _shown(spark), _history(spark), on_spark._label_tables(spark, DATABASE)
    with pytest.raises(writeback.WriteBackError, match=message):
        on_spark.publish_night(spark, DATABASE, labels(spark, night), night, expected_rows=expected_rows,
                               max_bad_share=0.65)
    assert (_shown(spark), _history(spark), on_spark._label_tables(spark, DATABASE)) == (shown, history, tables)
