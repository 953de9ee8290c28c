"""The demo master data as Spark tables (Parquet) in the database master_data: the same frames and contract as Postgres."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from custlabel.demo import truth
from custlabel.demo.generator import generate_block
from custlabel.demo.loader import BLOCK_CUSTOMERS, CUSTOMER_COLUMNS, SALE_COLUMNS
from custlabel.demo.world import DemoSpec
from custlabel.config import Settings
from custlabel.warehouse import contract

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# The contract's Postgres types as Spark types (macros/engine_types.sql, spark_contract_type, says the same).
# Amounts keep 18 decimals: Postgres's numeric is exact, Spark's bare `numeric` would round to integers.
SPARK_TYPES = {
    "text": "string",
    "timestamp with time zone": "timestamp",
    "numeric": "decimal(38,18)",
    "date": "date",
}


def spark_column_types(table: contract.Table) -> dict[str, str]:
    """Each contract column of a master-data table with its Spark type."""
    return {column.name: SPARK_TYPES[column.data_type] for column in table.columns}


def typed_frame(spark: SparkSession, frame: pd.DataFrame, table: contract.Table) -> DataFrame:
    """A pandas frame as a Spark frame with every contract column, cast to the contract's types."""
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    rows = spark.createDataFrame(arrow)
    present = set(frame.columns)
    return rows.selectExpr(*(
        f"cast({name if name in present else 'null'} as {spark_type}) as {name}"
        for name, spark_type in spark_column_types(table).items()
    ))


def replace_master_data(spark: SparkSession, settings: Settings, customers: int, days: int, seed: int, end_date: date) -> str:
    """Replace master_data.customers and master_data.sales with the demo world `custlabel demo-data` generates."""
    tables = contract.load(settings.project_dir)
    spec = DemoSpec(customers, days, seed, end_date, truth.outcome_window_days(settings.project_dir))
    for database in [row[0] for row in spark.sql("show databases").collect() if row[0].startswith("analytics")]:
        spark.sql(f"drop database {database} cascade")
    spark.sql(f"drop database if exists {contract.SCHEMA} cascade")
    spark.sql(f"create database {contract.SCHEMA}")
    n_customers = n_sales = 0
    for index in range(-(-customers // BLOCK_CUSTOMERS)):
        first = index * BLOCK_CUSTOMERS
        block = generate_block(spec, index, first, min(BLOCK_CUSTOMERS, customers - first))
        for name, frame in (("customers", block.customers[CUSTOMER_COLUMNS]), ("sales", block.sales[SALE_COLUMNS])):
            typed_frame(spark, frame, tables[name]).write.format("parquet").mode("append").saveAsTable(
                f"{contract.SCHEMA}.{name}"
            )
        n_customers += len(block.customers)
        n_sales += len(block.sales)
    return f"demo master data on Spark: {n_customers:,} customer rows, {n_sales:,} sale rows (seed {seed})"
