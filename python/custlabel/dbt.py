"""Runs dbt in-process (dbt's programmatic runner) against the configured warehouse."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from custlabel.config import Settings, get_settings
from custlabel.errors import CustlabelError


class DbtFailure(CustlabelError):
    """A dbt command failed; the message names the failing nodes."""


@dataclass(frozen=True)
class DbtResult:
    command: str
    warnings: list[str]
    nodes: int


def _profiles_dir(settings: Settings) -> str:
    """A profiles.yml that reads the PG* variables, kept under .local/ (never committed)."""
    target = settings.dbt_profiles_dir / "profiles.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings.project_dir / "profiles.yml.example", target)
    return str(target.parent)


def _ensure_packages(settings: Settings, base: list[str]) -> None:
    if not (settings.project_dir / "dbt_packages" / "dbt_expectations").exists():
        _invoke(["deps", *base])


def _invoke(args: list[str]):
    from dbt.cli.main import dbtRunner

    return dbtRunner().invoke(args)


def _describe(node_result) -> str:
    if node_result.message:
        return node_result.message
    max_loaded_at = getattr(node_result, "max_loaded_at", None)
    if max_loaded_at is not None:
        # Judged at the end of the night built, or now if earlier (macros/collect_freshness.sql).
        judged_at = f"{node_result.snapshotted_at:%Y-%m-%d %H:%M} UTC"
        if max_loaded_at.year == 1:
            return f"stale: nothing loaded by {judged_at}"
        return f"stale: last loaded {max_loaded_at:%Y-%m-%d %H:%M}, {node_result.age / 86400:.1f} days before {judged_at}"
    return str(node_result.status)


def split_vars(args: list[str]) -> tuple[list[str], dict]:
    """dbt arguments without `--vars`, and the vars they gave (YAML, as `dbt --vars` takes them)."""
    rest, variables = [], {}
    iterator = iter(args)
    for arg in iterator:
        if arg == "--vars" or arg.startswith("--vars="):
            text = arg.split("=", 1)[1] if "=" in arg else next(iterator, "")
            variables.update(parse_vars(text))
        else:
            rest.append(arg)
    return rest, variables


def parse_vars(text: str) -> dict:
    """A `--vars` value, e.g. '{outcome_window_days: 30}', as a dict."""
    import yaml

    try:
        value = yaml.safe_load(text) if text else {}
    except yaml.YAMLError as error:
        raise CustlabelError(f"--vars {text!r} is not YAML: {error}") from None
    if not isinstance(value, dict):
        raise CustlabelError(f"--vars {text!r} must be a mapping, e.g. '{{outcome_window_days: 30}}'")
    return value


def _failures(result) -> list[str]:
    if result.exception is not None:
        return [str(result.exception)]
    failures = []
    for node_result in getattr(result.result, "results", None) or []:
        if str(node_result.status) in {"error", "fail", "runtime error"}:
            failures.append(f"{node_result.node.name}: {_describe(node_result)}")
    return failures or ["dbt reported failure without node details (see logs/dbt.log)"]


def _warnings(result) -> list[str]:
    return [
        f"{node_result.node.name}: {_describe(node_result)}"
        for node_result in getattr(result.result, "results", None) or []
        if str(node_result.status) == "warn"
    ]


@contextmanager
def _warehouse_env(settings: Settings) -> Iterator[None]:
    """PG* variables for dbt's profile during one command, restored afterwards."""
    values = {**settings.connection.pg_env(), "PGTZ": "UTC"}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run(
    args: list[str],
    target: str | None = None,
    as_of_date: str | None = None,
    extra_vars: dict | None = None,
    settings: Settings | None = None,
) -> DbtResult:
    """Run one dbt command (e.g. ["build"]) for a target and night; raise DbtFailure on failure."""
    settings = settings or get_settings()
    if not args:
        raise CustlabelError("no dbt command given, e.g. `custlabel dbt build`")
    base = ["--project-dir", str(settings.project_dir), "--profiles-dir", _profiles_dir(settings)]
    args, given = split_vars(args)
    variables = {**(extra_vars or {}), **given}
    if as_of_date:
        variables["as_of_date"] = str(as_of_date)
    command = [*args, *base, "--target", target or settings.target]
    if variables and args[0] not in {"deps", "clean", "debug"}:
        command += ["--vars", json.dumps(variables, default=str)]
    with _warehouse_env(settings):
        _ensure_packages(settings, base)
        result = _invoke(command)
    if not result.success:
        raise DbtFailure(f"dbt {' '.join(args)} failed: " + "; ".join(_failures(result)))
    nodes = len(getattr(result.result, "results", None) or [])
    return DbtResult(" ".join(args), _warnings(result), nodes)
