"""Runs dbt in-process (dbt's programmatic runner) against the configured warehouse."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TextIO

import yaml

from custlabel.config import Settings, dbt_target_dir, exported
from custlabel.errors import CustlabelError
from custlabel.warehouse import parse_cache, retry, spark_session
from custlabel.warehouse.progress import Progress

ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NIGHT_LOG = re.compile(r"^night_by_night (?P<model>\S+): night (?P<done>\d+)/(?P<total>\d+) built$")
# Node statuses that end a command: "fail" is a failed test, "error" a model or query that broke.
FAILED_STATUSES = {"error", "fail", "runtime error"}
# Tonight for the dbt project (macros/as_of_date.sql), when the var as_of_date is not given.
AS_OF_DATE_VARIABLE = "CUSTLABEL_AS_OF_DATE"


class DbtFailure(CustlabelError):
    """A dbt command failed; the message names the failing nodes.

    transient: every failure was a lost connection or a lock wait (worth a retry),
    not a failed test, a compile error or a gate.
    """

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Failure:
    text: str
    transient: bool


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


def _behavior_flag_source() -> str:
    """The module that declared a dbt behavior flag, found as dbt_common finds it (the first caller outside
    dbt_common.behavior_flags) by walking the frames. dbt_common calls inspect.stack(), which reads the source
    of every frame and looks each one's module up in sys.modules: about 0.6 s of every command run in a process
    that has imported custlabel's libraries, for the name of a flag's source in a log event."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == "dbt_common.behavior_flags":
        frame = frame.f_back
    return frame.f_globals.get("__name__", "Unknown") if frame is not None else "Unknown"


def use_cheap_behavior_flag_source() -> None:
    from dbt_common.behavior_flags import BehaviorFlagRendered

    BehaviorFlagRendered._default_source = staticmethod(_behavior_flag_source)


def _invoke(args: list[str], callbacks: list | None = None):
    from dbt.cli.main import dbtRunner

    use_cheap_behavior_flag_source()
    return dbtRunner(callbacks=callbacks).invoke(args)


class NightsProgress:
    """The nights a history mart has built so far (logged by the night_by_night materialization), as progress."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.clock = stream, clock
        self.started: dict[str, float] = {}
        self.models: dict[str, Progress] = {}

    def on_event(self, event) -> None:
        """A dbt event callback: note when each model starts, advance its progress on each night it logs."""
        if event.info.name == "NodeStart":
            self.started[event.data.node_info.node_name] = self.clock()
            return
        if event.info.name not in {"JinjaLogDebug", "JinjaLogInfo"}:
            return
        night = NIGHT_LOG.match(event.data.msg)
        if night is None or int(night["total"]) < 2:
            return
        model, total = night["model"], int(night["total"])
        if model not in self.models:
            self.models[model] = Progress(
                f"dbt {model}", total, "nights", stream=self.stream, clock=self.clock, started=self.started.get(model)
            )
        self.models[model].advance()
        if int(night["done"]) == total:
            self.models.pop(model).close()


def _describe(node_result) -> str:
    if node_result.message:
        return node_result.message
    max_loaded_at = getattr(node_result, "max_loaded_at", None)
    if max_loaded_at is not None:
        # A load covers a night when made after it ended (macros/collect_freshness.sql).
        judged_at = f"{node_result.snapshotted_at:%Y-%m-%d %H:%M} UTC"
        if max_loaded_at.year == 1:
            return "stale: nothing loaded after the night ended: load a newer extract (custlabel load)"
        return f"stale: last loaded {max_loaded_at:%Y-%m-%d %H:%M} UTC, {node_result.age / 86400:.1f} days before {judged_at}"
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
    try:
        value = yaml.safe_load(text) if text else {}
    except yaml.YAMLError as error:
        raise CustlabelError(f"--vars {text!r} is not YAML: {error}") from None
    if not isinstance(value, dict):
        raise CustlabelError(f"--vars {text!r} must be a mapping, e.g. '{{outcome_window_days: 30}}'")
    return value


def _exception_is_transient(exception: BaseException) -> bool:
    from dbt.adapters.exceptions.connection import FailedToConnectError

    return isinstance(exception, FailedToConnectError) or retry.is_transient_message(str(exception))


def _failures(result) -> list[Failure]:
    if result.exception is not None:
        return [Failure(str(result.exception), _exception_is_transient(result.exception))]
    failures = []
    for node_result in getattr(result.result, "results", None) or []:
        status = str(node_result.status)
        if status in FAILED_STATUSES:
            text = _describe(node_result)
            # A failed test ("fail") is a verdict on the data: it fails the same way on a retry.
            transient = status != "fail" and retry.is_transient_message(text)
            failures.append(Failure(f"{node_result.node.name}: {text}", transient))
    return failures or [Failure("dbt reported failure without node details (see logs/dbt.log)", False)]


def _warnings(result) -> list[str]:
    return [
        f"{node_result.node.name}: {_describe(node_result)}"
        for node_result in getattr(result.result, "results", None) or []
        if str(node_result.status) == "warn"
    ]


@lru_cache(maxsize=4)
def project_vars(project_dir: Path) -> frozenset[str]:
    """The vars dbt_project.yml declares."""
    return frozenset(project_var_values(project_dir))


def project_var_values(project_dir: Path) -> dict[str, Any]:
    """The vars dbt_project.yml declares, with their default values."""
    project = yaml.safe_load((project_dir / "dbt_project.yml").read_text())
    return dict(project.get("vars") or {})


def iso_day(value: str | dt.date, name: str = "as_of_date") -> str:
    """A night as 'YYYY-MM-DD', or a CustlabelError naming the bad value."""
    if isinstance(value, dt.datetime):
        raise CustlabelError(f"{name} must be a date (YYYY-MM-DD), not a timestamp: {value!r}")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    try:
        if ISO_DAY.match(text):
            return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    raise CustlabelError(f"{name} must be a date written YYYY-MM-DD, got {value!r}")


# Vars that take a word, and the words they take (every other var but as_of_date is a number).
WORD_VARS = {
    "freshness": {"error", "warn", "skip"},
    "training_nights_every": {"month", "week"},
    "full_checks": {"weekly", "always"},
    "spark_nights": {"full", "kept"},
}


def checked_vars(variables: dict[str, Any], project_dir: Path) -> dict[str, Any]:
    """The vars for dbt's --vars, checked: declared in dbt_project.yml, a date for as_of_date, a listed word
    for WORD_VARS, numbers (or null, where the project default is null-able) otherwise.

    dbt pastes vars into SQL text, so nothing else may reach it.
    """
    known = project_vars(project_dir)
    checked: dict[str, Any] = {}
    for name, value in variables.items():
        if name not in known:
            raise CustlabelError(f"unknown dbt var {name!r}: dbt_project.yml declares {', '.join(sorted(known))}")
        if name == "as_of_date":
            checked[name] = iso_day(value)
        elif name in WORD_VARS:
            if value not in WORD_VARS[name]:
                raise CustlabelError(f"dbt var {name} must be one of {', '.join(sorted(WORD_VARS[name]))}, got {value!r}")
            checked[name] = value
        elif value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            checked[name] = value
        else:
            raise CustlabelError(f"dbt var {name} must be a number or null, got {value!r}")
    return checked


def run(
    settings: Settings,
    args: list[str],
    target: str | None = None,
    as_of_date: str | dt.date | None = None,
    extra_vars: dict | None = None,
    invoker: Callable[[list[str]], Any] | None = None,
) -> DbtResult:
    """Run one dbt command (e.g. ["build"]) for a target and night; raise DbtFailure on failure.

    invoker runs the command's arguments and returns dbt's result: dbtRunner().invoke unless given
    (the prefect_dbt benchmark gives PrefectDbtRunner's).
    """
    if not args:
        raise CustlabelError("no dbt command given, e.g. `custlabel dbt build`")
    args, given = split_vars(args)
    variables = {**(extra_vars or {}), **given}
    if as_of_date:
        variables["as_of_date"] = as_of_date
    variables = checked_vars(variables, settings.project_dir)
    # Tonight goes by the environment, not by --vars: dbt parses the whole project again whenever
    # its --vars change (8 to 9 s), and only the files that read a changed environment variable.
    night = {AS_OF_DATE_VARIABLE: variables.pop("as_of_date", None) or ""}
    base = ["--project-dir", str(settings.project_dir), "--profiles-dir", _profiles_dir(settings)]
    target = target or settings.target
    command = [*args, *base, "--target", target]
    if variables and args[0] not in {"deps", "clean", "debug"}:
        command += ["--vars", json.dumps(variables, default=str)]
    # PG* for dbt's profile, tonight, and where a local Spark session keeps its tables; restored afterwards
    with exported({**settings.connection.session_env(), **night, **spark_session.profile_env(settings)}):
        _ensure_packages(settings, base)
        with parse_cache.kept(dbt_target_dir(settings.project_dir), parse_cache.key(target, settings.connection, variables)):
            result = invoker(command) if invoker else _invoke(command, callbacks=[NightsProgress().on_event])
    if not result.success:
        failures = _failures(result)
        raise DbtFailure(
            f"dbt {' '.join(args)} failed: " + "; ".join(failure.text for failure in failures),
            transient=all(failure.transient for failure in failures),
        )
    # the project's on-run-end hook is among dbt's results, not among the nodes it ran
    results = getattr(result.result, "results", None) or []
    nodes = sum(1 for node_result in results if str(getattr(node_result.node, "resource_type", "")) != "operation")
    return DbtResult(" ".join(args), _warnings(result), nodes)
