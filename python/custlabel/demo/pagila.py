"""The worked example: the public pagila sample database onboarded by views (examples/pagila/).

`custlabel example pagila` loads pagila's own dump into the schema `pagila` (and
`pagila_legacy`) of the warehouse, maps it onto the master-data contract with the
views in examples/pagila/master_data.sql, and runs the nightly job for a night inside
pagila's data period.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from psycopg import sql

from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.nightly import serving
from custlabel.warehouse import db, embedded_postgres, guard

SCHEMA = "pagila"
DUMP_FILES = ("pagila-schema.sql", "pagila-data.sql")
DATASET_DIR = Path("examples/pagila")
# Schemas of the dump, renamed so that pagila keeps to schemas of its own.
RENAMED_SCHEMAS = {"public": SCHEMA, "legacy": "pagila_legacy"}
# Objects PostgreSQL 16 cannot create (JSON_TABLE came in 17); nothing we map reads them.
SKIPPED_OBJECTS = {"films_per_customer_rental"}
SKIPPED_SETTINGS = ("SET transaction_timeout ",)  # a PostgreSQL 17 setting
MAPPING_FILE = Path("examples/pagila/master_data.sql")
# The last night of pagila's rentals (2005-05-24 .. 2005-08-23; a few more on 2006-02-14).
NIGHT = date(2005, 8, 23)
# Three months of history: monthly nights 2005-06-01 .. 2005-08-01, two-week outcome
# windows; the replay is judged on freshness but only warned (the extract is newer).
DBT_VARS = {"outcome_window_days": 14, "feature_history_months": 3, "freshness": "warn"}
# Pagila's versions, approvals and canaries are its own: a model of other master data (the
# demo's) must never label pagila's customers.
MODEL_NAME = "pagila-customer-labels"

_SCHEMA_NAME = re.compile(r"\b(" + "|".join(RENAMED_SCHEMAS) + r")(\.|;| OWNER)")
_OBJECT_HEADER = re.compile(r"^-- (?:Data for )?Name: ([^;(]+)")


def default_dataset_dir(settings: Settings) -> Path:
    """The dataset shipped in the repository: examples/pagila (its dumps gzipped)."""
    return settings.project_dir / DATASET_DIR


def dump_file(dataset_dir: Path, name: str) -> Path | None:
    """The dump `name` in the folder, as upstream publishes it or gzipped; None when neither is there."""
    for path in (dataset_dir / name, dataset_dir / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def run(
    settings: Settings,
    dataset_dir: Path | None = None,
    as_of_date: date = NIGHT,
    target: str | None = None,
    dbt_vars: dict | None = None,
    i_mean_database: str | None = None,
) -> str:
    """Load pagila, map it onto master data, run the nightly job for the night; returns the run summary."""
    guard.require_scratch_database(settings, i_mean_database, "replace master_data with views over pagila")
    load_dump(settings, dataset_dir or default_dataset_dir(settings))
    map_to_master_data(settings)
    with own_model_name():
        return serving.run_once(
            as_of_date=as_of_date, target=target, auto_approve=True, dbt_vars={**DBT_VARS, **(dbt_vars or {})},
            settings=settings,
        )


@contextmanager
def own_model_name() -> Iterator[None]:
    """The run's registered model is pagila's (the flow reads CUSTLABEL_MODEL_NAME from the environment)."""
    saved = os.environ.get("CUSTLABEL_MODEL_NAME")
    os.environ["CUSTLABEL_MODEL_NAME"] = MODEL_NAME
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("CUSTLABEL_MODEL_NAME", None)
        else:
            os.environ["CUSTLABEL_MODEL_NAME"] = saved


def load_dump(settings: Settings, dataset_dir: Path) -> None:
    """Load pagila's schema and data files (plain or gzipped) into its own schemas, with psql, in one transaction."""
    found = {name: dump_file(dataset_dir, name) for name in DUMP_FILES}
    missing = [f"{dataset_dir / name}[.gz]" for name, path in found.items() if path is None]
    if missing:
        raise CustlabelError(f"pagila dataset not found: {', '.join(missing)} (give its folder with --dataset)")
    files = [path for path in found.values() if path is not None]
    with db.connect(settings, autocommit=True) as conn:
        for schema in RENAMED_SCHEMAS.values():
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(SCHEMA)))
    psql = embedded_postgres.bin_dir() / "psql"
    env = {**settings.connection.pg_env(), "PGOPTIONS": "-c client_min_messages=warning"}
    with tempfile.NamedTemporaryFile("w", suffix=".sql", encoding="utf-8") as script:
        for path in files:
            script.writelines(renamed_dump(path))
        script.flush()
        command = [str(psql), "--quiet", "--no-psqlrc", "--single-transaction", "-v", "ON_ERROR_STOP=1", "--file", script.name]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CustlabelError(f"loading pagila failed (nothing loaded): {result.stderr.strip()}")


def renamed_dump(path: Path) -> Iterator[str]:
    """The dump's lines (plain or gzipped) with its schemas renamed, SKIPPED_OBJECTS and SKIPPED_SETTINGS left out; COPY data untouched."""
    in_data = skipping = False
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if in_data:
                in_data = line != "\\.\n"
                yield line
                continue
            header = _OBJECT_HEADER.match(line)
            if header:
                skipping = header.group(1).strip() in SKIPPED_OBJECTS
            if skipping or line.startswith(SKIPPED_SETTINGS):
                continue
            in_data = line.startswith("COPY ")
            yield _SCHEMA_NAME.sub(lambda match: RENAMED_SCHEMAS[match.group(1)] + match.group(2), line)


def map_to_master_data(settings: Settings) -> None:
    """Replace master_data.* with the example's views over pagila; drop what dbt built from older master data."""
    mapping = (settings.project_dir / MAPPING_FILE).read_text()
    with db.connect(settings) as conn:
        for (schema,) in conn.execute("select nspname from pg_namespace where nspname like 'analytics%'").fetchall():
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
        conn.execute("create schema if not exists master_data")
        tables = conn.execute(
            "select relname from pg_class where relnamespace = 'master_data'::regnamespace and relkind = 'r'"
        ).fetchall()
        for (table,) in tables:
            conn.execute(sql.SQL("drop table {} cascade").format(sql.Identifier("master_data", table)))
        conn.execute(mapping)
