"""The demo rewrites master data and drops schemas: only on the embedded server, or a database the operator names."""

from __future__ import annotations

import psycopg
from psycopg import sql

from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.warehouse import db, embedded_postgres


class NotAScratchDatabase(CustlabelError):
    """The demo refused to write to a server that may hold a company's real master data."""


def confirm_scratch_database(
    conn: psycopg.Connection, settings: Settings, i_mean_database: str | None, would: str, database: str | None = None
) -> None:
    """Return when conn is the embedded server custlabel manages, or the database the operator named; else raise.

    `would` says what the caller is about to do, for the error message; `database` is the one it
    writes when that is not conn's own (a database it creates on the same server).
    """
    database = database or conn.execute("select current_database()").fetchone()[0]
    where = f"database {database!r} at {settings.connection.host}:{settings.connection.port}"
    if i_mean_database is not None:
        if i_mean_database == database:
            return
        raise NotAScratchDatabase(
            f"--i-mean-database {i_mean_database!r} does not match the {where} this would write to: "
            "nothing was written. Name the database you mean to overwrite exactly."
        )
    if embedded_postgres.is_embedded_server(conn, settings):
        return
    raise NotAScratchDatabase(
        f"refusing to {would} in the {where}: it is not the embedded PostgreSQL that custlabel runs from "
        f"{settings.embedded_data_dir}, so it may hold a company's real master data. "
        f"Nothing was written. If it is a scratch database, name it: --i-mean-database {database}"
    )


def create_scratch_database(settings: Settings, i_mean_database: str | None, would: str, database: str) -> None:
    """A database of the caller's own on the settings' server, created when missing, under the same guard."""
    with psycopg.connect(settings.connection.conninfo(), autocommit=True) as conn:
        confirm_scratch_database(conn, settings, i_mean_database, would, database)
        if not conn.execute("select 1 from pg_database where datname = %s", [database]).fetchone():
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))


def require_scratch_database(settings: Settings, i_mean_database: str | None, would: str) -> None:
    """confirm_scratch_database on a connection of its own, for commands that check before they connect."""
    with db.connect(settings) as conn:
        confirm_scratch_database(conn, settings, i_mean_database, would)
