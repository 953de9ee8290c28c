"""A benchmark step in a fresh process: its job pickled for `python -m MODULE --child JOB`, its figures read back as JSON."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def run(module: str, job: tuple[Any, ...], what: str) -> dict:
    """Run `module`'s child on `job` in a new interpreter; the JSON object it printed last."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "job.pickle"
        path.write_bytes(pickle.dumps(job))
        done = subprocess.run([sys.executable, "-m", module, "--child", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the {what} process failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
