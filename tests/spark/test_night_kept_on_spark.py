"""On Spark as on Postgres (with spark_nights: kept), a night of int_customer_sale_windows is kept from the
previous night it holds: the nights kept with their sales touched in between (touched_sales: late, edited,
cancelled, moved to another customer, paid ahead, deleted, set aside) equal the same nights computed in full on
Spark, and the nights kept on Postgres, within 1e-9 (int_customer_sale_windows and customer_features)."""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import date

import pandas as pd
import pytest

from custlabel.config import Settings
from custlabel.demo import loader, spark_master_data
from custlabel.warehouse import contract, db, dbt_runner, spark_session
from helpers import touched_sales
from helpers.engine_frames import assert_same_rows

pytestmark = [pytest.mark.spark, pytest.mark.integration, pytest.mark.slow]

# Four monthly nights and the nights built; on Spark, nights kept as on Postgres (off by default there).
VARS = {"feature_history_months": 3, "spark_nights": "kept"}
BUILD = ["build", "--select", "+customer_features", "--resource-type", "model", "--resource-type", "snapshot"]
TABLES = ("int_customer_sale_windows", "customer_features")
KEYS = ["customer_id", "as_of_date"]
# The nights a full build holds too, each kept from the night before it.
COMPARED = [date(2026, 7, 1), date(2026, 7, 2)]
# A night of the compiled model (macros/per_night.sql joins them): the held night it is kept from, if any, and
# the night.
NIGHT_BOUNDARY = "union all /* custlabel: next night */"
HELD_NIGHT = re.compile(r"select \* from analytics_spark\.int_customer_sale_windows\s+where as_of_date = '(\d{4}-\d{2}-\d{2})'::date")
NIGHT = re.compile(r"'(\d{4}-\d{2}-\d{2})'::date as as_of_date")


def _copy_master_data(postgres: Settings, spark) -> None:
    """Spark's master_data replaced by Postgres's rows, as they are now."""
    tables = contract.load(postgres.project_dir)
    spark.sql(f"create database if not exists {contract.SCHEMA}")
    for name, columns in (("customers", loader.CUSTOMER_COLUMNS), ("sales", loader.SALE_COLUMNS)):
        rows = db.read_frame(postgres, f"select {', '.join(columns)} from {contract.SCHEMA}.{name}")
        spark_master_data.typed_frame(spark, rows, tables[name]).write.format("parquet").mode("overwrite").saveAsTable(
            f"{contract.SCHEMA}.{name}"
        )


def _kept_from(settings: Settings) -> dict[date, date | None]:
    """Each night of the last build of int_customer_sale_windows, with the held night it was kept from (None: in
    full), read from the model's compiled SQL."""
    compiled = (settings.project_dir / os.environ.get("DBT_TARGET_PATH", "target") / "compiled" / "custlabel"
                / "models" / "intermediate" / "int_customer_sale_windows.sql").read_text()
    nights = {}
    for one_night in compiled.split(NIGHT_BOUNDARY):
        held = HELD_NIGHT.search(one_night)
        night = date.fromisoformat(NIGHT.findall(one_night)[-1])
        nights[night] = date.fromisoformat(held.group(1)) if held else None
    return nights


def _read_spark(spark, table: str) -> pd.DataFrame:
    nights = ", ".join(f"date'{night}'" for night in COMPARED)
    rows = spark.sql(f"select * from analytics_spark.{table} where as_of_date in ({nights})").toArrow().to_pandas()
    return rows.drop(columns=["built_at"], errors="ignore")


def _read_postgres(settings: Settings, table: str) -> pd.DataFrame:
    rows = db.read_frame(settings, f"select * from analytics.{table} where as_of_date = any(:nights)", {"nights": COMPARED})
    return rows.drop(columns=["built_at"], errors="ignore")


@pytest.fixture(scope="module")
def nights(make_database, tmp_path_factory: pytest.TempPathFactory):
    """The touched world built night by night on Postgres and, from the same master data, on local Spark; the nights
    each Spark build kept, the tables kept on each engine, and the same nights rebuilt in full on Spark."""
    postgres = make_database("spark_kept")
    settings = dataclasses.replace(postgres, local_dir=tmp_path_factory.mktemp("spark-kept"))
    spark = spark_session.local_session(settings)
    loader.generate_and_load(settings=postgres, i_mean_database=postgres.connection.dbname, **touched_sales.WORLD)
    kept_from: dict[date, date | None] = {}

    def build(night: date) -> None:
        dbt_runner.run(postgres, BUILD, target="prod", as_of_date=night, extra_vars=VARS)
        _copy_master_data(postgres, spark)
        dbt_runner.run(settings, BUILD, target="spark", as_of_date=night, extra_vars=VARS)
        kept_from.update(_kept_from(settings))

    build(touched_sales.START)
    touched_sales.advance_touching_sales(
        postgres,
        build=build,
        check_sales_again=lambda night: dbt_runner.run(
            postgres, ["run", "--full-refresh", "--select", "int_sales_checked"], target="prod", as_of_date=night),
    )
    kept = {table: _read_spark(spark, table) for table in TABLES}
    on_postgres = {table: _read_postgres(postgres, table) for table in TABLES}
    dbt_runner.run(settings, ["run", "--full-refresh", "--select", *TABLES], target="spark",
                   as_of_date=COMPARED[-1], extra_vars=VARS)
    full = {table: _read_spark(spark, table) for table in TABLES}
    yield kept_from, kept, on_postgres, full
    spark.stop()


def test_each_night_after_the_first_is_kept_from_the_night_before_on_spark(nights):
    kept_from, _, _, _ = nights
    assert {night: previous for night, previous in kept_from.items() if night > touched_sales.START} == {
        date(2026, 6, 28): date(2026, 6, 27),
        date(2026, 6, 30): date(2026, 6, 28),
        date(2026, 7, 1): date(2026, 6, 30),
        date(2026, 7, 2): date(2026, 7, 1),
    }


@pytest.mark.parametrize("table", TABLES)
def test_the_nights_kept_on_spark_equal_the_nights_computed_in_full(nights, table):
    _, kept, _, full = nights
    assert len(full[table]) > 500 and set(full[table]["as_of_date"]) == set(COMPARED)
    assert_same_rows(kept[table], full[table], KEYS)


@pytest.mark.parametrize("table", TABLES)
def test_the_nights_kept_on_spark_equal_the_nights_kept_on_postgres(nights, table):
    _, kept, on_postgres, _ = nights
    # Each engine's checksum of a customer's sale ids hashes them its own way (text_hash).
    spark_rows, postgres_rows = (rows[table].drop(columns=["known_sales_checksum"], errors="ignore")
                                 for rows in (kept, on_postgres))
    assert len(postgres_rows) > 500
    assert_same_rows(spark_rows, postgres_rows, KEYS)
