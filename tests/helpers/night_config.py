"""The nightly run's configuration as an operator sets it: environment variables and copies of the reviewed files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from custlabel.config import DEFAULT_PROJECT_DIR
from custlabel.release import release_policy

# The smallest search that still trains every step of a night (CUSTLABEL_SEARCH_*).
SMALL_SEARCH = {"CUSTLABEL_SEARCH_ITERATIONS": "1", "CUSTLABEL_SEARCH_FOLDS": "2", "CUSTLABEL_SEARCH_JOBS": "1"}
ONE_FAMILY = {**SMALL_SEARCH, "CUSTLABEL_SEARCH_CANDIDATES": "logistic_regression"}


def _merged(shipped: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(shipped)
    for key, value in changes.items():
        if key not in shipped:
            raise KeyError(f"release.yml has no key {key!r}")
        merged[key] = _merged(shipped[key], value) if isinstance(value, dict) else value
    return merged


def release_text(changes: dict[str, Any]) -> str:
    """The shipped release.yml with only `changes` (nested keys) made."""
    shipped = yaml.safe_load((DEFAULT_PROJECT_DIR / release_policy.FILE_NAME).read_text())
    return yaml.safe_dump(_merged(shipped, changes), sort_keys=False)


def release_file(directory: Path, changes: dict[str, Any]) -> Path:
    """A copy of the shipped release.yml with only `changes` made, validated: the file for CUSTLABEL_RELEASE_FILE."""
    path = directory / release_policy.FILE_NAME
    path.write_text(release_text(changes))
    release_policy.read_file(path)
    return path
