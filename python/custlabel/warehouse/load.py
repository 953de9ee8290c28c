"""`custlabel load`: customers and sales files (CSV or Parquet) into master data, checked against the contract.

Each file streams by COPY (in chunks: memory stays flat in the file size) into a
table typed by the contract, so Postgres itself checks every value; an error names
the file, row and column. Everything happens in one transaction, each row stamped with
the load time in `loaded_at`: a failed load changes nothing. A replace truncates the
master-data table and copies straight into it (frozen: no later rewrite by vacuum); an
append copies into a temporary table first, so that readers are never locked out.
Exact duplicate rows are collapsed; rows of one key with different values are refused,
or kept for the quarantine when asked (load_duplicates).
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue
from threading import Event, Thread
from typing import Literal

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql

from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.warehouse import contract, db, guard, load_duplicates
from custlabel.warehouse.progress import Progress

Mode = Literal["replace", "append"]
ConflictPolicy = Literal["refuse", "quarantine"]
CHUNK_BYTES = 1 << 20
PARQUET_BATCH_ROWS = 65_536
# How staging quarantines the rows of a key whose values conflict (macros/staging, models/staging).
QUARANTINE_REASONS = {"customers": "conflicting_customer", "sales": "conflicting_sale"}
# Postgres names the failing line (and column) of a COPY in the error's context.
COPY_CONTEXT = re.compile(r"line (?P<line>\d+)(?:, column (?P<column>[^:]+))?")


class LoadError(CustlabelError):
    """A file does not meet the contract; nothing was loaded."""


@dataclass(frozen=True)
class SourceFile:
    """One file to load into one contract table, with the contract columns it carries, in file order."""

    table: contract.Table
    path: Path
    columns: list[str]

    @property
    def is_parquet(self) -> bool:
        return self.path.suffix.lower() in {".parquet", ".pq"}


@dataclass(frozen=True)
class LoadSummary:
    """Rows loaded per table, exact duplicate rows collapsed, and rows of conflicting keys kept for the quarantine."""

    rows: dict[str, int]
    mode: Mode
    seconds: float
    duplicates: dict[str, int]
    conflicts: dict[str, int]

    def __str__(self) -> str:
        counts = ", ".join(f"{rows:,} {table} rows" for table, rows in self.rows.items())
        verb = "replaced master data with" if self.mode == "replace" else "appended"
        parts = [f"{verb} {counts} in {self.seconds:.1f} s"]
        if any(self.duplicates.values()):
            parts.append("collapsed exact duplicate rows: " + ", ".join(
                f"{rows:,} {table}" for table, rows in self.duplicates.items() if rows
            ))
        for table, rows in self.conflicts.items():
            if rows:
                parts.append(
                    f"{rows:,} {table} rows conflict (same {load_duplicates.ID_COLUMNS[table]} and updated_at, "
                    f"different values): loaded for the quarantine, where the build sets them aside as "
                    f"{QUARANTINE_REASONS[table]}"
                )
        return "; ".join(parts)


def load(
    settings: Settings,
    files: dict[str, Path],
    mode: Mode = "replace",
    i_mean_database: str | None = None,
    conflicts: ConflictPolicy = "refuse",
) -> LoadSummary:
    """Load files by contract table name ('customers', 'sales'); all or nothing.

    Conflicting rows (same id and updated_at, different values) refuse the load, or with
    conflicts='quarantine' are loaded for staging to set aside.
    """
    if not files:
        raise LoadError("nothing to load: give --customers FILE and/or --sales FILE")
    if mode not in ("replace", "append"):
        raise LoadError(f"unknown mode {mode!r}: replace or append")
    if conflicts not in ("refuse", "quarantine"):
        raise LoadError(f"unknown conflicts policy {conflicts!r}: refuse or quarantine")
    guard.require_scratch_database(settings, i_mean_database, f"{mode} master data from files (custlabel load)")
    tables = contract.load(settings.project_dir)
    sources = [inspect(tables[name], Path(path)) for name, path in files.items()]
    started = time.perf_counter()
    rows: dict[str, int] = {}
    duplicates: dict[str, int] = {}
    conflicting: dict[str, int] = {}
    with db.connect(settings) as conn:
        conn.execute("set temp_buffers = '256MB'")  # an append's temporary tables (default 8 MB)
        conn.execute("set local work_mem = '256MB'")  # the duplicate check's sort of every row's key
        conn.execute("set local datestyle = 'ISO, YMD'")
        conn.execute("set local client_encoding = 'UTF8'")
        _ensure_tables(conn, tables)
        for source in sources:
            name = source.table.name
            rows[name], check = _replace(conn, source) if mode == "replace" else _append(conn, source)
            if check.conflicts.keys and conflicts == "refuse":
                raise LoadError(_refusal(source, check.conflicts))
            duplicates[name], conflicting[name] = check.collapsed, check.conflicts.rows_in_file
    with db.connect(settings, autocommit=True) as conn:
        for source in sources:
            conn.execute(sql.SQL("analyze {}").format(sql.Identifier(contract.SCHEMA, source.table.name)))
    return LoadSummary(rows, mode, time.perf_counter() - started, duplicates, conflicting)


def _refusal(source: SourceFile, conflicts: load_duplicates.Conflicts) -> str:
    """The conflicting keys of a file, counted, with examples of the values that differ, and the two ways out."""
    table = source.table.name
    identifier = load_duplicates.ID_COLUMNS[table]
    where = f": {conflicts.rows_in_file} in the file, {conflicts.rows_in_master_data} already in master data"
    return (
        f"{source.path} ({table}): {conflicts.keys:,} {identifier}(s) have rows with the same {identifier} and "
        f"updated_at, different values ({conflicts.rows:,} rows{where if conflicts.rows_in_master_data else ''}), "
        f"e.g. {'; '.join(conflicts.examples)}. A changed row needs a later updated_at (it is then a new version); "
        f"fix the file, or load these rows for the quarantine with --conflicts quarantine (the build sets them "
        f"aside as {QUARANTINE_REASONS[table]}); nothing loaded"
    )


def inspect(table: contract.Table, path: Path) -> SourceFile:
    """Check a file's columns against the contract: required ones present, none unknown or twice."""
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        columns = pq.ParquetFile(path).schema_arrow.names
    elif suffix == ".csv":
        columns = _csv_header(table, path)
    else:
        raise LoadError(f"{path}: unknown file type {suffix!r}: .csv or .parquet")
    known = [column.name for column in table.file_columns]
    problems = []
    missing = [name for name in table.required if name not in columns]
    if missing:
        problems.append(f"missing required column(s) {', '.join(missing)}")
    unknown = [name for name in columns if name not in known]
    if unknown:
        problems.append(f"column(s) not in the {table.name} contract: {', '.join(unknown)}")
    twice = sorted({name for name in columns if columns.count(name) > 1})
    if twice:
        problems.append(f"column(s) given twice: {', '.join(twice)}")
    if problems:
        raise LoadError(
            f"{path} ({table.name}): " + "; ".join(problems) + f". The contract's columns: {', '.join(known)} "
            f"(required: {', '.join(table.required)}); nothing loaded"
        )
    return SourceFile(table, path, columns)


def _csv_header(table: contract.Table, path: Path) -> list[str]:
    """The column names of a CSV file's first line; an error naming the line when it is not UTF-8."""
    with path.open("rb") as handle:
        first_line = handle.readline()
    try:
        header = first_line.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        what = f"byte {first_line[error.start]:#04x} at position {error.start + 1}"
        raise LoadError(_not_utf8(f"{path} ({table.name}), line 1", what)) from None
    return [name.strip() for name in next(csv.reader([header]), [])]


def _not_utf8(where: str, what: str) -> str:
    return (
        f"{where}: not UTF-8 ({what}): save the file as UTF-8 "
        "(e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`, or your tool's UTF-8 export); nothing loaded"
    )


def _ensure_tables(conn: psycopg.Connection, tables: dict[str, contract.Table]) -> None:
    for name in tables:
        kind = conn.execute(
            "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relname = %s",
            [contract.SCHEMA, name],
        ).fetchone()
        if kind is not None and kind[0] != "r":
            raise LoadError(
                f"{contract.SCHEMA}.{name} is not a table (a view over your own tables?): "
                "load into the tables it reads instead; nothing loaded"
            )
    for statement in contract.create_tables(tables):
        conn.execute(statement)


def _replace(conn: psycopg.Connection, source: SourceFile) -> tuple[int, load_duplicates.KeyCheck]:
    """Truncate the master-data table and copy the file straight into it, stamped with the load time."""
    target = sql.Identifier(contract.SCHEMA, source.table.name)
    load_time = sql.Identifier(contract.LOAD_TIME_COLUMN)
    conn.execute(sql.SQL("truncate {}").format(target))
    # The default lives only inside this transaction: no other writer ever sees it.
    conn.execute(sql.SQL("alter table {} alter column {} set default now()").format(target, load_time))
    rows = _copy(conn, source, target, freeze=True)
    conn.execute(sql.SQL("alter table {} alter column {} drop default").format(target, load_time))
    check = load_duplicates.check(conn, source.table, target, existing=None)
    return rows - check.collapsed, check


def _append(conn: psycopg.Connection, source: SourceFile) -> tuple[int, load_duplicates.KeyCheck]:
    """Copy the file into a temporary table, then add its new rows to master data, stamped with the load time."""
    table = source.table
    staging = sql.Identifier(f"_load_{table.name}")
    conn.execute(
        sql.SQL("create temp table {} ({}) on commit drop").format(staging, contract.column_list(table.file_columns))
    )
    _copy(conn, source, staging, freeze=False)
    target = sql.Identifier(contract.SCHEMA, table.name)
    check = load_duplicates.check(conn, table, staging, existing=target)
    names = sql.SQL(", ").join(sql.Identifier(column.name) for column in table.file_columns)
    inserted = conn.execute(
        sql.SQL("insert into {} ({}, {}) select {}, now() from {}").format(
            target, names, sql.Identifier(contract.LOAD_TIME_COLUMN), names, staging
        )
    ).rowcount
    return inserted, check


def _copy(conn: psycopg.Connection, source: SourceFile, table: sql.Identifier, freeze: bool) -> int:
    """Stream one file into a table by COPY; returns the rows copied."""
    header = "false" if source.is_parquet else "true"
    statement = sql.SQL("copy {} ({}) from stdin with (format csv, header {}, freeze {})").format(
        table, sql.SQL(", ").join(map(sql.Identifier, source.columns)), sql.SQL(header), sql.SQL(str(freeze).lower())
    )
    chunks = _prefetched(_parquet_chunks(source.path)) if source.is_parquet else _csv_chunks(source.path)
    cursor = conn.cursor()
    try:
        with cursor.copy(statement) as copy, _progress(source) as progress:
            for chunk in chunks:
                copy.write(chunk)
                # Parquet arrives as CSV lines, one a row (a quoted newline in a value counts twice).
                progress.advance(chunk.count(b"\n") if source.is_parquet else len(chunk))
    except psycopg.errors.DataError as error:
        raise LoadError(_describe(source, error)) from None
    finally:
        chunks.close()
    return cursor.rowcount


def _progress(source: SourceFile) -> Progress:
    """Rows of a Parquet file (its metadata counts them), MiB of a CSV file."""
    what = f"load {source.path.name}"
    if source.is_parquet:
        return Progress(what, pq.ParquetFile(source.path).metadata.num_rows, "rows")
    return Progress(what, source.path.stat().st_size, "MiB", scale=2**20)


def _csv_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def _prefetched(chunks: Iterator[bytes], depth: int = 2) -> Iterator[bytes]:
    """The chunks, made by a thread of their own while the previous ones are being sent (Arrow and the
    socket both release the GIL): converting Parquet to CSV overlaps with Postgres parsing it."""
    queue: Queue = Queue(maxsize=depth)
    done, stopped = object(), Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                if stopped.is_set():
                    return
                queue.put(chunk)
        except BaseException as error:  # handed to the consumer, raised there
            queue.put(error)
            return
        queue.put(done)

    producer = Thread(target=produce, name="parquet-to-csv", daemon=True)
    producer.start()
    try:
        while (item := queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopped.set()
        while producer.is_alive():  # a COPY that failed early: free a producer waiting on a full queue
            try:
                queue.get(timeout=0.1)
            except Empty:
                pass


def _parquet_chunks(path: Path) -> Iterator[bytes]:
    """The file's rows as CSV without header, one record batch at a time."""
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    # Without pre-buffering, Arrow holds one batch at a time rather than whole row groups.
    for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=PARQUET_BATCH_ROWS, use_threads=False):
        buffer = io.BytesIO()
        pacsv.write_csv(_with_offsets(batch), buffer, options)
        yield buffer.getvalue()


def _with_offsets(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Zoned timestamps as UTC text with its offset, so that the session's time zone (CUSTLABEL_TIMEZONE,
    which reads the naive ones as wall times there) cannot move their instant; Arrow writes this text
    ten times faster than it writes zoned timestamps."""
    columns = [
        pc.binary_join_element_wise(column.cast(pa.timestamp(column.type.unit)).cast(pa.string()), "+00", "")
        if pa.types.is_timestamp(column.type) and column.type.tz else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _describe(source: SourceFile, error: psycopg.errors.DataError) -> str:
    """The file, row and column of a value Postgres refused, in the user's terms."""
    context = COPY_CONTEXT.search(error.diag.context or "")
    where = f"{source.path} ({source.table.name})"
    if isinstance(error, psycopg.errors.CharacterNotInRepertoire):
        line = f", {'row' if source.is_parquet else 'line'} {context['line']}" if context else ""
        return _not_utf8(where + line, error.diag.message_primary or "")
    if context:
        line = int(context["line"])
        # Parquet rows arrive without a header; a CSV's line 1 is its header.
        row = line if source.is_parquet else line - 1
        where += f", row {row}" + ("" if source.is_parquet else f" (line {line})")
        if context["column"]:
            types = {column.name: column.data_type for column in source.table.file_columns}
            name = context["column"]
            where += f", column {name}" + (f" ({types[name]})" if name in types else "")
    return f"{where}: {error.diag.message_primary}; nothing loaded"
