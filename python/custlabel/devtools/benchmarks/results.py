"""The bench's figures as JSON (.local/bench/latest.json) so that two runs can be compared."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import psutil


@dataclass
class Record:
    """One section at one size: seconds and bytes as numbers, plus the printed lines."""

    section: str
    customers: int
    history_days: int
    seconds: dict[str, float] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def document(
    records: list[Record], command: list[str], now: datetime, commit: str | None, machine: dict, curves: dict | None = None
) -> dict:
    """The JSON document of a run: how it was run, where, every record, and the curves drawn."""
    return {
        "command": command,
        "date": now.isoformat(timespec="seconds"),
        "git_commit": commit,
        "machine": machine,
        "records": [asdict(record) for record in records],
        "curves": curves or {},
    }


def write(path: Path, doc: dict) -> Path:
    """Write the document in one piece (a crash leaves the previous file whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    os.replace(partial, path)
    return path


def this_machine() -> dict:
    """Cores and RAM of the machine the bench ran on."""
    return {"cores": os.cpu_count(), "ram_bytes": psutil.virtual_memory().total}


def git_commit(folder: Path) -> str | None:
    """The checked-out commit of the repository, with '+dirty' when files differ from it; None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder, capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if changed else "")
