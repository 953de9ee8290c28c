"""dbt_runner.run with another invoker (as the prefect_dbt benchmark gives PrefectDbtRunner's): the same command, the same checks."""

from __future__ import annotations

import json

import pytest
from dbt.cli.main import dbtRunner

from custlabel.warehouse import dbt_runner

pytestmark = pytest.mark.integration


def test_an_invoker_gets_the_command_with_vars_target_and_profiles_and_its_failures_are_judged(warehouse_settings):
    given: list[list[str]] = []

    def invoker(command: list[str]):
        given.append(command)
        return dbtRunner().invoke(command)

    dbt_runner.run(
        warehouse_settings, ["show", "--inline", "select 1 as one"], target="test", as_of_date="2026-07-01",
        invoker=invoker,
    )
    command = given[-1]
    assert command[:3] == ["show", "--inline", "select 1 as one"]
    assert command[command.index("--target") + 1] == "test"
    assert command[command.index("--profiles-dir") + 1] == str(warehouse_settings.dbt_profiles_dir)
    assert json.loads(command[command.index("--vars") + 1]) == {"as_of_date": "2026-07-01"}

    with pytest.raises(dbt_runner.DbtFailure, match="division by zero") as raised:
        dbt_runner.run(warehouse_settings, ["show", "--inline", "select 1 / 0 as broken"], target="test", invoker=invoker)
    assert not raised.value.transient
