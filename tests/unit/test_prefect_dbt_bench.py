"""prefect-dbt is not a dependency: only its benchmark imports it, and without the extra that section names the fix."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

from custlabel.devtools.benchmarks import prefect_dbt_overhead
from custlabel.errors import CustlabelError

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "python" / "custlabel"


def _imports_prefect_dbt(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "prefect_dbt" for alias in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "prefect_dbt":
            return True
    return False


def test_prefect_dbt_is_an_optional_extra_that_only_its_benchmark_imports() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [pin for pin in project["dependencies"] if pin.startswith("prefect-dbt")]
    assert project["optional-dependencies"]["prefect-dbt-bench"] == ["prefect-dbt==0.7.25"]
    importers = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if _imports_prefect_dbt(path)}
    assert importers == {"devtools/benchmarks/prefect_dbt_overhead.py"}


def test_the_bench_section_without_prefect_dbt_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prefect_dbt", None)  # what `import prefect_dbt` meets when it is not installed
    with pytest.raises(CustlabelError, match=r"needs prefect-dbt.*pip install -e '\.\[prefect-dbt-bench\]'"):
        prefect_dbt_overhead.require_prefect_dbt()
