"""The source of a dbt behavior flag, found without inspect.stack(): the same module name as dbt_common's own lookup."""

from __future__ import annotations

from dbt_common.behavior_flags import BehaviorFlagRendered

from custlabel.warehouse import dbt_runner

FLAG = {"name": "custlabel_test_flag", "default": False, "docs_url": "https://docs.getdbt.com"}


def declared_here() -> str:
    return BehaviorFlagRendered(FLAG, {})._behavior_change_event.flag_source


def test_a_flag_without_a_source_is_named_after_the_module_that_declared_it_as_dbt_common_names_it() -> None:
    inspected = BehaviorFlagRendered.__dict__["_default_source"]
    try:
        dbt_runner.use_cheap_behavior_flag_source()
        assert BehaviorFlagRendered.__dict__["_default_source"] is not inspected
        walked = declared_here()
    finally:
        BehaviorFlagRendered._default_source = inspected
    assert walked == declared_here() == __name__


def test_a_flag_with_a_source_keeps_it() -> None:
    dbt_runner.use_cheap_behavior_flag_source()
    flag = BehaviorFlagRendered({**FLAG, "source": "dbt.adapters.postgres"}, {})
    assert flag._behavior_change_event.flag_source == "dbt.adapters.postgres"
