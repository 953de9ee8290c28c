"""What decides a training besides the data: the dbt models upstream of training_set, the training code, acceptance.yml.

Recorded on every version (tag training_code_sha256); the code trigger fires when
tonight's differs from the champion's. The dbt part comes from dbt's manifest
(target/manifest.json): every node upstream of `training_set` with its checksum, and
the macros they call with their SQL. Without a manifest (dbt never parsed the
project) every model and macro file counts.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import subprocess
from pathlib import Path
from typing import Any

from custlabel.config import Settings, dbt_target_dir
from custlabel.training import (
    acceptance,
    evaluate,
    features,
    model_families,
    model_search,
    training_data,
)

CODE_TAG = "training_code_sha256"
TRAINING_SET = "training_set"
# The modules whose code decides what a training learns.
TRAINING_MODULES = (features, training_data, model_families, model_search, evaluate)


def code_revision(project_dir: Path) -> str:
    """The git commit of the code, with "-dirty" when the work tree has changes; "unknown" outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(project_dir), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(project_dir), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def upstream_of_training_set(manifest: dict[str, Any]) -> dict[str, str]:
    """Each dbt node and macro training_set is built from (itself included), by unique id → checksum or SQL hash."""
    nodes, macros = manifest.get("nodes", {}), manifest.get("macros", {})
    roots = [key for key, node in nodes.items() if node.get("resource_type") == "model" and node.get("name") == TRAINING_SET]
    if not roots:
        raise training_data.TrainingDataError(f"dbt's manifest has no model {TRAINING_SET}: run `custlabel dbt parse`")
    found: dict[str, str] = {}
    waiting = list(roots)
    while waiting:
        key = waiting.pop()
        if key in found:
            continue
        if key in nodes:
            node = nodes[key]
            found[key] = node.get("checksum", {}).get("checksum", "")
            depends = node.get("depends_on", {})
            waiting += [*depends.get("nodes", []), *depends.get("macros", [])]
        elif key in macros:
            macro = macros[key]
            found[key] = hashlib.sha256(macro.get("macro_sql", "").encode()).hexdigest()
            waiting += macro.get("depends_on", {}).get("macros", [])
        else:
            found[key] = "source"
    return found


def dbt_digest(project_dir: Path) -> dict[str, str]:
    """The dbt part of the fingerprint: the manifest's upstream of training_set, else every model and macro file."""
    manifest = dbt_target_dir(project_dir) / "manifest.json"
    if manifest.is_file():
        return upstream_of_training_set(json.loads(manifest.read_text()))
    files = sorted([*(project_dir / "models").rglob("*.sql"), *(project_dir / "macros").rglob("*.sql")])
    return {path.relative_to(project_dir).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def training_code_sha256(settings: Settings) -> str:
    """A hash of the dbt models upstream of training_set, the training modules, the feature kinds and acceptance.yml."""
    digest = hashlib.sha256()
    for key, checksum in sorted(dbt_digest(settings.project_dir).items()):
        digest.update(f"{key}={checksum}\n".encode())
    for module in TRAINING_MODULES:
        digest.update(Path(inspect.getfile(module)).read_bytes())
    # What training reads of the features' YAML (names, types, kinds); reworded reasons retrain nothing.
    digest.update(json.dumps([(f.name, f.data_type, f.kind) for f in features.FEATURES]).encode())
    digest.update(acceptance.default_path(settings).read_bytes())
    return digest.hexdigest()[:16]
