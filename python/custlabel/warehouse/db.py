"""Connections to the warehouse: SQLAlchemy for pandas, psycopg for COPY and DDL."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
import psycopg
import sqlalchemy

from custlabel.config import Settings


@lru_cache(maxsize=8)
def _engine_for(conninfo: str) -> sqlalchemy.Engine:
    # The same quoted conninfo as psycopg's connections: timeouts, keepalives and sslmode included.
    return sqlalchemy.create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(conninfo), pool_pre_ping=True
    )


def engine(settings: Settings) -> sqlalchemy.Engine:
    """A pooled SQLAlchemy engine for the configured warehouse."""
    return _engine_for(settings.connection.conninfo())


def connect(settings: Settings, autocommit: bool = False) -> psycopg.Connection:
    """A fresh psycopg connection (for COPY, DDL and transactions we control), with the configured timeouts."""
    return psycopg.connect(settings.connection.conninfo(), autocommit=autocommit)


def read_frame(settings: Settings, query: str, params: dict | None = None) -> pd.DataFrame:
    """Run a query with bound parameters and return the rows as a DataFrame."""
    with engine(settings).connect() as conn:
        return pd.read_sql_query(sqlalchemy.text(query), conn, params=params or {})


def relation_exists(conn: psycopg.Connection, schema: str, name: str) -> bool:
    """Whether a table or view exists."""
    row = conn.execute("select to_regclass(%s)", [f'"{schema}"."{name}"']).fetchone()
    return row is not None and row[0] is not None
