"""dbt's parse of the project, kept for each target, database and set of vars.

dbt keeps one parse (target/partial_parse.msgpack) and parses all 227 files again, 8 to 9 s, whenever a
command's target, connection or --vars differ from the last command's. A retraining night alternates the
prod and test targets, and every such switch cost a whole parse. Each combination's parse is saved beside
dbt's and put back before its next command; dbt still checks it, and parses again only the files changed
since. target/ keeps its usual files (manifest.json, run_results.json) for whoever reads them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from custlabel.config import Connection

PARSE_FILE = "partial_parse.msgpack"  # dbt's name (dbt.constants.PARTIAL_PARSE_FILE_NAME)
FOLDER = "parse-by-profile"
# The parses kept, those used last: one per target and database in daily use, a few for --vars tried by hand.
KEPT = 16


def key(target: str, connection: Connection, variables: dict) -> str:
    """What a saved parse is filed under: what dbt compares before reusing a parse, but for the dbt version
    and dbt_project.yml (a parse saved with others is parsed again, and replaced)."""
    profile = [target, connection.host, connection.port, connection.dbname, connection.user, variables]
    return hashlib.sha256(json.dumps(profile, sort_keys=True, default=str).encode()).hexdigest()[:16]


@contextmanager
def kept(target_dir: Path, parse_key: str) -> Iterator[None]:
    """Put the parse saved under parse_key where dbt reads it; save the one dbt writes during the block."""
    live, saved = target_dir / PARSE_FILE, target_dir / FOLDER / f"{parse_key}.msgpack"
    if saved.is_file():
        target_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved, live)
        os.utime(saved)  # used last: kept by the pruning below
    started = time.time()
    try:
        yield
    finally:
        if live.is_file() and live.stat().st_mtime >= started:
            _save(live, saved)


def _save(live: Path, saved: Path) -> None:
    saved.parent.mkdir(parents=True, exist_ok=True)
    partial = saved.with_suffix(".partial")
    shutil.copyfile(live, partial)
    partial.replace(saved)
    for stale in sorted(saved.parent.glob("*.msgpack"), key=lambda path: path.stat().st_mtime, reverse=True)[KEPT:]:
        stale.unlink(missing_ok=True)
