"""dbt_runner.run with another invoker (as the prefect_dbt benchmark gives PrefectDbtRunner's): the same command, the same checks."""

from __future__ import annotations

import json
import os

import pytest
from dbt.cli.main import dbtRunner

from custlabel.config import dbt_target_dir
from custlabel.warehouse import dbt_runner, parse_cache

pytestmark = pytest.mark.integration


def test_an_invoker_gets_the_command_with_vars_target_and_profiles_and_its_failures_are_judged(warehouse_settings):
    given: list[list[str]] = []
    shown: list = []

    def invoker(command: list[str]):
        given.append(command)
        result = dbtRunner().invoke(command)
        shown.extend(tuple(row) for node_result in getattr(result.result, "results", None) or [] for row in node_result.agate_table.rows)
        return result

    dbt_runner.run(
        warehouse_settings, ["show", "--inline", "select {{ as_of_date() }}::text as night, {{ var('outcome_window_days') }} as days"],
        target="test", as_of_date="2026-07-01", extra_vars={"outcome_window_days": 30}, invoker=invoker,
    )
    command = given[-1]
    assert command[:2] == ["show", "--inline"]
    assert command[command.index("--target") + 1] == "test"
    assert command[command.index("--profiles-dir") + 1] == str(warehouse_settings.dbt_profiles_dir)
    # tonight reaches the project through the environment (a changed --vars would make dbt parse it all again)
    assert json.loads(command[command.index("--vars") + 1]) == {"outcome_window_days": 30}
    assert shown == [("2026-07-01", 30)]
    assert dbt_runner.AS_OF_DATE_VARIABLE not in os.environ

    with pytest.raises(dbt_runner.DbtFailure, match="division by zero") as raised:
        dbt_runner.run(warehouse_settings, ["show", "--inline", "select 1 / 0 as broken"], target="test", invoker=invoker)
    assert not raised.value.transient


def test_another_night_is_parsed_from_the_last_parse(warehouse_settings):
    """dbt parses the whole project again when its --vars change (8 to 9 s): tonight must not be one of them."""
    for night in ("2026-07-01", "2026-07-02"):
        dbt_runner.run(warehouse_settings, ["parse"], target="test", as_of_date=night)
    performance = json.loads((dbt_target_dir(warehouse_settings.project_dir) / "perf_info.json").read_text())
    assert performance["path_count"] > 100
    assert performance["parsed_path_count"] == 0


def test_a_parse_is_kept_for_each_target_database_and_vars(warehouse_settings, make_database):
    """dbt parses the whole project again when the target, the database or --vars differ from its last command's:
    a retraining night alternates prod and test, a test suite databases. Going back to one reads no file again."""
    other = make_database("parse_cache_other")
    commands = [(warehouse_settings, "prod", {}), (warehouse_settings, "test", {}), (other, "prod", {}),
                (warehouse_settings, "prod", {"outcome_window_days": 30})]
    for settings, target, variables in [*commands, *commands]:
        dbt_runner.run(settings, ["parse"], target=target, extra_vars=variables)
        performance = json.loads((dbt_target_dir(settings.project_dir) / "perf_info.json").read_text())
    assert performance["path_count"] > 100
    assert performance["parsed_path_count"] == 0
    saved = dbt_target_dir(warehouse_settings.project_dir) / parse_cache.FOLDER
    keys = {parse_cache.key(target, settings.connection, variables) for settings, target, variables in commands}
    assert keys <= {path.stem for path in saved.glob("*.msgpack")} and len(keys) == len(commands)


@pytest.mark.parametrize("night", ["2026-13-01", "2026-07-01' or true or '"])
def test_a_night_in_the_environment_that_is_not_a_date_stops_dbt_naming_it(warehouse_settings, night):
    def invoker(command: list[str]):  # as `dbt` run by hand with CUSTLABEL_AS_OF_DATE exported
        os.environ[dbt_runner.AS_OF_DATE_VARIABLE] = night
        return dbtRunner().invoke(command)

    with pytest.raises(dbt_runner.DbtFailure, match="as_of_date must be a date") as raised:
        dbt_runner.run(warehouse_settings, ["show", "--inline", "select {{ as_of_date() }} as night"], target="test",
                       invoker=invoker)
    assert not raised.value.transient
