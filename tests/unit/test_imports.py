"""The package's import graph: no cycles, stages import downwards (import-linter), few imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "python" / "custlabel"
# Imports allowed inside functions, by file, each for a measured reason:
ALLOWED_IN_FUNCTIONS = {
    # each command imports its stage when it runs: all stages cost ~8 s to import, this module 0.04 s
    "cli.py": {"custlabel"},
    # orbital takes ~4 s to import and only the SQL engine needs it
    "scoring/sql_scoring.py": {"orbital"},
    # Apprise loads its notification plugins on import; only a night with a notification URL needs it
    "monitoring/alerts.py": {"apprise"},
    # dbt's runner is imported when a dbt command runs
    "warehouse/dbt_runner.py": {"dbt", "dbt_common"},
    # `python -m custlabel.benchmarks.scoring` would import itself twice through the package
    "devtools/benchmarks/__init__.py": {"custlabel"},
    # pyspark is the optional spark extra, and starts a JVM: only Spark targets need it
    "warehouse/spark_session.py": {"pyspark"},
    # the nightly flow imports the Spark steps for every target: pyspark only when a night runs on Spark
    "scoring/on_spark.py": {"pyspark"},
    # prefect-dbt is an optional extra (prefect-dbt-bench), installed only to measure it
    "devtools/benchmarks/prefect_dbt_overhead.py": {"prefect_dbt"},
}


def test_the_contracts_in_pyproject_are_kept(capsys) -> None:
    code = lint_imports(str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out


def test_the_linter_fails_on_a_cycle(tmp_path: Path, monkeypatch, capsys) -> None:
    package = tmp_path / "tangled"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text("from tangled import registry\n")
    (package / "registry.py").write_text("def config_hash():\n    from tangled import train\n")
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["tangled"]\n\n[[tool.importlinter.contracts]]\n'
        'name = "no cycles"\ntype = "acyclic_siblings"\nancestors = ["tangled"]\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert lint_imports(str(config), no_cache=True, no_logo=True) == 1
    assert "No cycles are allowed in tangled" in capsys.readouterr().out


def _function_imports(path: Path) -> set[str]:
    """Top-level package names imported inside functions of a module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in inner.names}
                elif isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                    names.add(inner.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_sit_at_the_top_of_modules(path: Path) -> None:
    allowed = ALLOWED_IN_FUNCTIONS.get(str(path.relative_to(PACKAGE)), set())
    assert _function_imports(path) <= allowed, f"move these imports to the top of {path.name}"


def test_the_function_import_check_sees_a_hidden_import(tmp_path: Path) -> None:
    module = tmp_path / "registry.py"
    module.write_text("import json\n\ndef config_hash():\n    from custlabel.training.model_search import candidate_spaces\n")
    assert _function_imports(module) == {"custlabel"}
