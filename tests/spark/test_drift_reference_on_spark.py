"""A registered version's reference bins, written to Postgres at registration, copied to Spark for the drift marts
there: the same rows, once."""

from __future__ import annotations

import pytest

from custlabel.config import get_settings, monitoring_schema, schema_for
from custlabel.monitoring import drift_reference, drift_reference_on_spark
from custlabel.warehouse import db
from custlabel.warehouse.spark_session import local_session
from helpers.engine_frames import assert_same_rows
from helpers.scoring import synthetic_frame

pytestmark = [pytest.mark.spark, pytest.mark.integration]

MODEL, VERSION = "customer-risk", "3"
KEYS = ["model_name", "model_version", "feature", "bin"]


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory):
    session = local_session(get_settings({"CUSTLABEL_LOCAL_DIR": str(tmp_path_factory.mktemp("spark-local"))}))
    yield session
    session.stop()


def test_a_versions_reference_bins_on_spark_are_postgres_bins(spark, make_database) -> None:
    postgres = make_database("drift_reference_to_spark")
    stored = drift_reference.store(postgres, MODEL, VERSION, synthetic_frame(500, seed=4))
    drift_reference.store(postgres, MODEL, "2", synthetic_frame(300, seed=5))
    database = schema_for("spark")

    copied = drift_reference_on_spark.copy_to_spark(spark, database, postgres, postgres.schema, MODEL, VERSION)

    expected = db.read_frame(postgres, f"select * from {monitoring_schema(postgres.schema)}.{drift_reference.TABLE}"
                                       f" where model_version = '{VERSION}'")
    on_spark = spark.sql(f"select * from {monitoring_schema(database)}.{drift_reference.TABLE}").toArrow().to_pandas()
    assert copied == stored == len(expected) > 20
    assert_same_rows(on_spark, expected, KEYS, atol=0)
    assert drift_reference_on_spark.copy_to_spark(spark, database, postgres, postgres.schema, MODEL, VERSION) == 0
