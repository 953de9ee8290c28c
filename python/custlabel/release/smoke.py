"""Smoke test of a registered version: in a fresh process, load it by registry URI only and score a sample of tonight.

The version's files are checked against the hashes recorded at its registration
(registry.verified_files) before MLflow reads any of them: a tampered version is refused.

Checks: the signature's inputs are exactly tonight's feature columns (customer_features_current
without keys, provenance and sensitive attributes) with matching types; the scores of a
sample are in [0, 1], one per row, none null; the CPU time per row stays under
MAX_MS_PER_ROW (a sanity bound: throughput is the computational gate's job; CPU time,
because wall time on a shared machine measures the other jobs too).

On Spark (check_on_spark) the checks are the same; tonight's columns, their Spark types and the
sample are read by the parent and handed to the child in a Parquet file (custlabel.release.handed_rows
says why), so the child starts no Spark session.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from psycopg import sql

from custlabel.config import Settings
from custlabel.gate_verdicts import GateResult
from custlabel.release import handed_rows
from custlabel.release.handed_rows import HandedTonight
from custlabel.training import registry
from custlabel.training.features import (
    KEY_COLUMNS,
    PROVENANCE_COLUMNS,
    SENSITIVE_ATTRIBUTES,
)
from custlabel.warehouse import db

NAME = "smoke"
SAMPLE_ROWS = 1_000
MAX_MS_PER_ROW = 1.0
CURRENT_FEATURES = "customer_features_current"
# Signature types (MLflow DataType names) each warehouse type (Postgres's, Spark's) may feed.
NUMBERS = {"double", "float", "long", "integer"}
COMPATIBLE = {"double precision": NUMBERS, "text": {"string"}, "double": NUMBERS, "string": {"string"}}
NUMERIC_TYPES = {"double precision", "double"}


def registry_uri(model_name: str, version: str) -> str:
    """The one way the smoke test names a version: `models:/<name>/<version>`."""
    return f"models:/{model_name}/{version}"


def _tonight_columns(settings: Settings, schema: str) -> dict[str, str]:
    with db.connect(settings) as conn:
        rows = conn.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = %s and table_name = %s order by ordinal_position",
            [schema, CURRENT_FEATURES],
        ).fetchall()
    return dict(rows)


def signature_problems(inputs: dict[str, str], tonight: dict[str, str], left_out: Iterable[str] = ()) -> list[str]:
    """What keeps a signature (column → MLflow type) from matching tonight's columns (column → warehouse type).

    Args:
        left_out: features the version's training left out on purpose (its `features_left_out` tag).
    """
    ignored = {*KEY_COLUMNS, *PROVENANCE_COLUMNS, *SENSITIVE_ATTRIBUTES, *left_out}
    features = {name: kind for name, kind in tonight.items() if name not in ignored}
    problems = []
    if sensitive := sorted(set(inputs) & set(SENSITIVE_ATTRIBUTES)):
        problems.append(f"the signature uses sensitive attributes as features: {', '.join(sensitive)}")
    if missing := sorted(set(inputs) - set(tonight)):
        problems.append(f"tonight's {CURRENT_FEATURES} lacks the signature's columns: {', '.join(missing)}")
    if unused := [name for name in features if name not in inputs]:
        problems.append(f"the signature lacks tonight's feature columns: {', '.join(unused)} (an older feature contract)")
    mismatched = [
        f"{name} ({inputs[name]} vs {tonight[name]})"
        for name in inputs
        if name in tonight and inputs[name] not in COMPATIBLE.get(tonight[name], {inputs[name]})
    ]
    if mismatched:
        problems.append(f"types differ from tonight's: {', '.join(mismatched)}")
    return problems


def _sample(settings: Settings, schema: str, columns: list[str], tonight: dict[str, str], rows: int):
    query = sql.SQL("select {} from {} order by md5(customer_id) limit {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema, CURRENT_FEATURES), sql.Literal(rows)
    )
    return _typed(db.read_frame(settings, query.as_string()), columns, tonight)


def _typed(frame: pd.DataFrame, columns: list[str], tonight: dict[str, str]) -> pd.DataFrame:
    for column in columns:
        frame[column] = frame[column].astype("float64" if tonight[column] in NUMERIC_TYPES else "str")
    return frame


def run_in_this_process(
    settings: Settings, uri: str, schema: str, rows: int = SAMPLE_ROWS, handed: HandedTonight | None = None
) -> dict[str, Any]:
    """The smoke test itself (the child process runs this): problems found and figures measured.

    Args:
        handed: tonight's columns and sample read by the parent (Spark); None reads them from schema on Postgres.
    """
    registry.point_mlflow_at(settings.mlflow_tracking_uri)
    tonight = handed.columns if handed else _tonight_columns(settings, schema)
    if not tonight:
        return {"problems": [f"{schema}.{CURRENT_FEATURES} does not exist: nothing to smoke-test against"], "figures": {}}
    started = time.perf_counter()
    name, version = uri.removeprefix("models:/").rsplit("/", 1)
    try:
        with registry.verified_files(replace(settings, model_name=name), version) as local:
            model = mlflow.pyfunc.load_model(str(local))
    except registry.ArtifactTamperedError as error:
        return {"problems": [f"{uri} refused: {error}"], "figures": {"uri": uri, "refused": True}}
    figures: dict[str, Any] = {"uri": uri, "load_seconds": round(time.perf_counter() - started, 3)}
    schema_in = model.metadata.get_input_schema()
    if schema_in is None:
        return {"problems": [f"{uri} has no input signature"], "figures": figures}
    inputs = {column.name: column.type.name for column in schema_in.inputs}
    tags = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri).get_model_version(name, version).tags
    problems = signature_problems(inputs, tonight, json.loads(tags.get("features_left_out", "{}")))
    if any(name not in tonight for name in inputs):
        return {"problems": problems, "figures": figures}
    if handed:
        frame = _typed(pd.read_parquet(handed.sample, columns=list(inputs)).head(rows), list(inputs), tonight)
    else:
        frame = _sample(settings, schema, list(inputs), tonight, rows)
    model.predict(frame.head(10))  # the first call pays for lazy imports and thread pools, not per row
    started = time.process_time()
    output = np.asarray(model.predict(frame), dtype=float)
    seconds = time.process_time() - started
    scores = output[:, -1] if output.ndim == 2 else output
    nulls, outside = int(np.isnan(scores).sum()), int(((scores < 0) | (scores > 1)).sum())
    ms_per_row = 1000 * seconds / max(len(frame), 1)
    figures.update(
        rows=len(frame), scores=int(scores.size), nulls=nulls, outside_0_1=outside, ms_per_row=round(ms_per_row, 4),
        min_score=float(np.nanmin(scores)) if nulls < scores.size else None,
        max_score=float(np.nanmax(scores)) if nulls < scores.size else None,
    )
    if scores.size != len(frame):
        problems.append(f"{scores.size} scores for {len(frame)} rows")
    if nulls:
        problems.append(f"{nulls} of {scores.size} scores are null (NaN)")
    if outside:
        problems.append(f"{outside} scores outside [0, 1]")
    if ms_per_row > MAX_MS_PER_ROW:
        problems.append(f"{ms_per_row:.3f} CPU ms per row, above the smoke bound of {MAX_MS_PER_ROW} ms")
    return {"problems": problems, "figures": figures}


def check(settings: Settings, version: str, schema: str, rows: int = SAMPLE_ROWS) -> GateResult:
    """Smoke-test a version of the configured model in a fresh process against schema's tonight."""
    with tempfile.TemporaryDirectory() as folder:
        return _in_fresh_process(settings, version, schema, rows, None, Path(folder))


def check_on_spark(settings: Settings, version: str, database: str, rows: int = SAMPLE_ROWS) -> GateResult:
    """Smoke-test a version in a fresh process against tonight of a database on Spark, read by this process."""
    with tempfile.TemporaryDirectory() as folder:
        handed = handed_rows.tonight(settings, database, rows, Path(folder))
        return _in_fresh_process(settings, version, database, rows, handed, Path(folder))


def _in_fresh_process(settings: Settings, version: str, schema: str, rows: int, handed: HandedTonight | None,
                      folder: Path) -> GateResult:
    uri = registry_uri(settings.model_name, version)
    job = folder / "job.pickle"
    job.write_bytes(pickle.dumps((settings, uri, schema, rows, handed)))
    limit = settings.step_timeouts.smoke_seconds
    try:
        done = subprocess.run([sys.executable, "-m", "custlabel.release.smoke", str(job)], capture_output=True, text=True,
                              timeout=limit)
    except subprocess.TimeoutExpired:
        reason = f"{uri} did not finish within {limit:g} s in a fresh process (CUSTLABEL_SMOKE_TIMEOUT_SECONDS): stopped"
        return GateResult(NAME, False, reason, {"uri": uri, "timeout_seconds": limit})
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit code {done.returncode}"
        return GateResult(NAME, False, f"{uri} failed in a fresh process: {last}", {"uri": uri})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    problems, figures = result["problems"], result["figures"]
    if problems:
        return GateResult(NAME, False, "; ".join(problems), figures)
    return GateResult(
        NAME,
        True,
        f"{uri} loaded in a fresh process; signature matches tonight's columns; {figures['rows']} rows scored in"
        f" [{figures['min_score']:.3f}, {figures['max_score']:.3f}], no nulls, {figures['ms_per_row']:.3f} CPU ms per row",
        figures,
    )


if __name__ == "__main__":
    job_settings, job_uri, job_schema, job_rows, job_handed = pickle.loads(Path(sys.argv[1]).read_bytes())
    print(json.dumps(run_in_this_process(job_settings, job_uri, job_schema, job_rows, job_handed)))
