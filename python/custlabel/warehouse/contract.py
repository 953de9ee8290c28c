"""The master-data contract, read from the dbt sources file: columns, Postgres types, required or not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from psycopg import sql

SOURCES_FILE = Path("models/staging/master/_master__sources.yml")
SCHEMA = "master_data"
# Written by `custlabel load`, never read from a file.
LOAD_TIME_COLUMN = "loaded_at"


@dataclass(frozen=True)
class Column:
    """One contract column."""

    name: str
    data_type: str
    required: bool
    description: str


@dataclass(frozen=True)
class Table:
    """One master-data table of the contract."""

    name: str
    columns: tuple[Column, ...]

    @property
    def file_columns(self) -> tuple[Column, ...]:
        """The columns a file may carry (all but the load time, which the loader writes)."""
        return tuple(column for column in self.columns if column.name != LOAD_TIME_COLUMN)

    @property
    def required(self) -> list[str]:
        return [column.name for column in self.columns if column.required]


def load(project_dir: Path) -> dict[str, Table]:
    """The contract's tables by name, from the project's dbt sources file."""
    document = yaml.safe_load((project_dir / SOURCES_FILE).read_text())
    source = next(item for item in document["sources"] if item["name"] == SCHEMA)
    return {
        table["name"]: Table(table["name"], tuple(_column(column) for column in table["columns"]))
        for table in source["tables"]
    }


def _column(entry: dict) -> Column:
    meta = (entry.get("config") or {}).get("meta") or {}
    return Column(entry["name"], entry["data_type"], bool(meta.get("required", False)), entry.get("description", ""))


def markdown(tables: dict[str, Table]) -> str:
    """The contract as docs/master-data.md shows it: one markdown table per master-data table."""
    parts = []
    for table in tables.values():
        lines = [f"`{SCHEMA}.{table.name}`:", "", "| column | type | required | meaning |", "|---|---|---|---|"]
        for column in table.columns:
            required = "**required**" if column.required else "optional"
            lines.append(f"| `{column.name}` | {column.data_type} | {required} | {column.description} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def create_tables(tables: dict[str, Table]) -> list[sql.Composed]:
    """Statements that create the master-data tables, or add the contract columns they lack."""
    statements = [sql.SQL("create schema if not exists {}").format(sql.Identifier(SCHEMA))]
    for table in tables.values():
        name = sql.Identifier(SCHEMA, table.name)
        statements.append(sql.SQL("create table if not exists {} ({})").format(name, column_list(table.columns)))
        for column in table.columns:
            statements.append(
                sql.SQL("alter table {} add column if not exists {} {}").format(
                    name, sql.Identifier(column.name), sql.SQL(column.data_type)
                )
            )
    return statements + [_index(*index) for index in SALES_INDEXES]


# The nightly build reads master data's changed sales through these (int_sales_checked: rows
# updated since the last build, every row of their sales, the rows whose id is not written as it
# is keyed; the tests' rows of the week; the newest load). A company's views need the same on the
# tables behind.
SALES_INDEXES = (
    ("sales_updated_at", "(updated_at)"),
    ("sales_loaded_at", "(loaded_at)"),
    ("sales_sale_id", "(sale_id)"),
    ("sales_unkeyed_sale_id", "(sale_id) where (sale_id is null or sale_id ~ '^ | $' or sale_id = '')"),
)


def _index(name: str, definition: str) -> sql.Composed:
    """An index on master_data.sales, created when missing and when the sales are a table (not a view)."""
    create = sql.SQL("create index if not exists {} on {} {}").format(
        sql.Identifier(name), sql.Identifier(SCHEMA, "sales"), sql.SQL(definition)
    )
    return sql.SQL(
        "do $$ begin if exists (select from pg_tables where schemaname = {} and tablename = 'sales')"
        " then execute {}; end if; end $$"
    ).format(sql.Literal(SCHEMA), sql.Literal(create.as_string(None)))


def column_list(columns: tuple[Column, ...]) -> sql.Composed:
    """`name type, ...` for a create table statement."""
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.data_type)) for column in columns
    )
