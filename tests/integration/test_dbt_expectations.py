"""The local dbt_expectations package, proven with real dbt on a real Postgres.

A throwaway dbt project holds two models with the same shape: `good` (every
expectation holds) and `bad` (known violations). Each expectation below is
declared on both with `dbt build`, and we check the status and failing-row count
dbt reports, as a user reading `dbt build` output would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from dbt.cli.main import dbtRunner

pytestmark = pytest.mark.integration

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "packages" / "dbt_expectations"
MODELS = ("good", "bad")

# id, customer_id, order_no, grp, status, amount, discount, code, age_hours
GOOD_ROWS = """
    (1, 10, 1, 'a', 'open', 10.0, 0.0, 'AB123', 1),
    (2, 10, 2, 'a', 'closed', 20.0, 5.0, 'AB124', 2),
    (3, 11, 1, 'a', 'open', 30.0, 30.0, 'CD001', 3),
    (4, 11, 2, 'b', 'closed', 40.0, 10.0, 'CD002', 24),
    (5, 12, 1, 'b', 'open', 50.0, null, 'EF100', 48),
    (6, null, null, 'b', 'closed', 60.0, 0.0, 'EF101', 72),
    (7, null, null, 'b', 'open', 70.0, 0.0, 'EF102', 96)
"""
# Violations: row 2 duplicates key (10, 1), has amount < 0, discount > amount and a short code;
# row 3 has an unknown status, discount > amount and no code; row 4 has no status and amount > 100;
# rows 4 and 5 share key (null, 2); row 5 has no amount. All rows are years old.
BAD_ROWS = """
    (1, 10, 1, 'a', 'open', 10.0, 0.0, 'AB123', 1),
    (2, 10, 1, 'a', 'closed', -5.0, 5.0, 'AB12', 2),
    (3, 11, 1, 'a', 'pending', 30.0, 40.0, null, 3),
    (4, null, 2, 'b', null, 150.0, 10.0, 'CD002', 24),
    (5, null, 2, 'b', 'open', null, 0.0, 'EF100', 48)
"""
MODEL_SQL = """
select
    id,
    customer_id,
    order_no,
    grp,
    status,
    amount,
    discount,
    code,
    {updated_at} - age_hours * interval '1 hour' as updated_at{extra}
from (values {rows}
) as t (id, customer_id, order_no, grp, status, amount, discount, code, age_hours)
"""
GOOD_SQL = MODEL_SQL.format(
    updated_at="cast(current_timestamp at time zone 'UTC' as timestamp)", extra="", rows=GOOD_ROWS
)
BAD_SQL = MODEL_SQL.format(
    updated_at="timestamp '2020-01-01'", extra=",\n    cast(null as text) as note", rows=BAD_ROWS
)
GOOD_COLUMNS = ["id", "customer_id", "order_no", "grp", "status", "amount", "discount", "code", "updated_at"]

# Seven rows per copy (grp a: 3, grp b: 4), two copies.
REFERENCE_CSV = "id,grp,copy\n" + "".join(
    f"{copy * 10 + i},{'a' if i <= 3 else 'b'},{copy}\n" for copy in (1, 2) for i in range(1, 8)
)


@dataclass(frozen=True)
class Spec:
    """One expectation declared on both models, with the failing-row count expected on each."""

    name: str
    test: str
    arguments: dict[str, Any]
    good: int
    bad: int
    column: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    bad_status: str | None = None  # when a config turns a failure into something else

    def expected(self, model: str) -> tuple[str, int]:
        failures = self.good if model == "good" else self.bad
        if model == "bad" and self.bad_status:
            return self.bad_status, failures
        return ("fail" if failures else "pass"), failures


KEY = ["customer_id", "order_no"]
CODE_REGEX = "^[A-Z]{2}[0-9]{3}$"
REFERENCE = "ref('reference_rows')"

SPECS = [
    # expect_column_values_to_be_between
    Spec("values_between", "expect_column_values_to_be_between",
         {"min_value": 0, "max_value": 100}, good=0, bad=2, column="amount"),
    Spec("values_between_strictly", "expect_column_values_to_be_between",
         {"min_value": 10, "max_value": 70, "strictly": True}, good=2, bad=3, column="amount"),
    Spec("values_between_row_condition", "expect_column_values_to_be_between",
         {"min_value": 0, "max_value": 100, "row_condition": "grp = 'a'"}, good=0, bad=1, column="amount"),
    # expect_column_values_to_be_in_set (a null is not in the set)
    Spec("in_set", "expect_column_values_to_be_in_set",
         {"value_set": ["open", "closed"]}, good=0, bad=2, column="status"),
    Spec("in_set_row_condition", "expect_column_values_to_be_in_set",
         {"value_set": ["open", "closed"], "row_condition": "status is not null"}, good=0, bad=1, column="status"),
    Spec("in_set_unquoted", "expect_column_values_to_be_in_set",
         {"value_set": [10, 20, 30, 40, 50, 60, 70], "quote_values": False}, good=0, bad=3, column="amount"),
    # expect_column_values_to_not_be_null
    Spec("not_null", "expect_column_values_to_not_be_null", {}, good=0, bad=1, column="amount"),
    Spec("not_null_row_condition", "expect_column_values_to_not_be_null",
         {"row_condition": "id < 6"}, good=0, bad=2, column="customer_id"),
    # expect_table_row_count_to_be_between
    Spec("row_count_between", "expect_table_row_count_to_be_between",
         {"min_value": 6, "max_value": 10}, good=0, bad=1),
    Spec("row_count_between_inclusive", "expect_table_row_count_to_be_between",
         {"min_value": 5, "max_value": 7}, good=0, bad=0),
    Spec("row_count_between_strictly", "expect_table_row_count_to_be_between",
         {"min_value": 5, "max_value": 7, "strictly": True}, good=1, bad=1),
    Spec("row_count_between_group_by", "expect_table_row_count_to_be_between",
         {"min_value": 3, "max_value": 4, "group_by": ["grp"]}, good=0, bad=1),
    Spec("row_count_between_row_condition", "expect_table_row_count_to_be_between",
         {"min_value": 3, "max_value": 4, "row_condition": "status = 'open'"}, good=0, bad=1),
    # a lower bound only: `good` has 7 rows (4 open), `bad` 5 (2 open)
    Spec("row_count_at_least", "expect_table_row_count_to_be_between", {"min_value": 6}, good=0, bad=1),
    Spec("row_count_at_least_exactly", "expect_table_row_count_to_be_between", {"min_value": 7}, good=0, bad=1),
    Spec("row_count_more_than", "expect_table_row_count_to_be_between",
         {"min_value": 5, "strictly": True}, good=0, bad=1),
    Spec("row_count_at_least_row_condition", "expect_table_row_count_to_be_between",
         {"min_value": 3, "row_condition": "status = 'open'"}, good=0, bad=1),
    # expect_table_row_count_to_equal_other_table
    Spec("row_count_equal_other", "expect_table_row_count_to_equal_other_table",
         {"compare_model": REFERENCE, "compare_row_condition": "copy = 1"}, good=0, bad=1),
    Spec("row_count_equal_other_factor", "expect_table_row_count_to_equal_other_table",
         {"compare_model": REFERENCE, "factor": 0.5}, good=0, bad=1),
    Spec("row_count_equal_other_group_by", "expect_table_row_count_to_equal_other_table",
         {"compare_model": REFERENCE, "group_by": ["grp"], "compare_row_condition": "copy = 1"}, good=0, bad=1),
    # compare_row_condition defaults to row_condition: 3 rows vs 6 * 0.5 in group a
    Spec("row_count_equal_other_row_condition", "expect_table_row_count_to_equal_other_table",
         {"compare_model": REFERENCE, "factor": 0.5, "row_condition": "grp = 'a'"}, good=0, bad=0),
    # expect_row_values_to_have_recent_data
    Spec("recent_data", "expect_row_values_to_have_recent_data",
         {"datepart": "day", "interval": 1}, good=0, bad=1, column="updated_at"),
    Spec("recent_data_row_condition", "expect_row_values_to_have_recent_data",
         {"datepart": "day", "interval": 2, "row_condition": "grp = 'b'"}, good=0, bad=1, column="updated_at"),
    Spec("recent_data_hours", "expect_row_values_to_have_recent_data",
         {"datepart": "hour", "interval": 12, "row_condition": "grp = 'b'"}, good=1, bad=1, column="updated_at"),
    # expect_column_mean/max/min_to_be_between
    Spec("mean_between", "expect_column_mean_to_be_between",
         {"min_value": 35, "max_value": 45}, good=0, bad=1, column="amount"),
    Spec("mean_between_group_by", "expect_column_mean_to_be_between",
         {"min_value": 15, "max_value": 65, "group_by": ["grp"]}, good=0, bad=2, column="amount"),
    Spec("max_between", "expect_column_max_to_be_between", {"max_value": 100}, good=0, bad=1, column="amount"),
    Spec("max_between_strictly", "expect_column_max_to_be_between",
         {"min_value": 70, "strictly": True}, good=1, bad=0, column="amount"),
    Spec("min_between", "expect_column_min_to_be_between", {"min_value": 0}, good=0, bad=1, column="amount"),
    Spec("min_between_row_condition", "expect_column_min_to_be_between",
         {"min_value": 0, "row_condition": "id != 2"}, good=0, bad=0, column="amount"),
    # expect_column_proportion_of_unique_values_to_be_between
    Spec("unique_proportion", "expect_column_proportion_of_unique_values_to_be_between",
         {"min_value": 0, "max_value": 0.5}, good=0, bad=1, column="status"),
    # group a has 10, 10, 11 in both models; group b of `bad` has only nulls, which passes
    Spec("unique_proportion_group_by", "expect_column_proportion_of_unique_values_to_be_between",
         {"min_value": 1, "group_by": ["grp"]}, good=1, bad=1, column="customer_id"),
    # expect_column_quantile_values_to_be_between
    Spec("quantile_median", "expect_column_quantile_values_to_be_between",
         {"quantile": 0.5, "min_value": 30, "max_value": 50}, good=0, bad=1, column="amount"),
    Spec("quantile_group_by", "expect_column_quantile_values_to_be_between",
         {"quantile": 0.9, "max_value": 100, "group_by": ["grp"]}, good=0, bad=1, column="amount"),
    # expect_column_pair_values_A_to_be_greater_than_B
    Spec("a_greater_or_equal_b", "expect_column_pair_values_A_to_be_greater_than_B",
         {"column_A": "amount", "column_B": "discount", "or_equal": True}, good=0, bad=2),
    Spec("a_greater_than_b", "expect_column_pair_values_A_to_be_greater_than_B",
         {"column_A": "amount", "column_B": "discount"}, good=1, bad=2),
    Spec("a_greater_b_row_condition", "expect_column_pair_values_A_to_be_greater_than_B",
         {"column_A": "amount", "column_B": "discount", "or_equal": True, "row_condition": "grp = 'b'"},
         good=0, bad=0),
    # expect_compound_columns_to_be_unique (one failing row per duplicated key)
    Spec("compound_unique", "expect_compound_columns_to_be_unique", {"column_list": KEY}, good=0, bad=2),
    Spec("compound_unique_any_missing", "expect_compound_columns_to_be_unique",
         {"column_list": KEY, "ignore_row_if": "any_value_is_missing"}, good=0, bad=1),
    Spec("compound_unique_row_condition", "expect_compound_columns_to_be_unique",
         {"column_list": KEY, "row_condition": "id != 2"}, good=0, bad=1),
    Spec("compound_unique_quoted", "expect_compound_columns_to_be_unique",
         {"column_list": KEY, "quote_columns": True}, good=0, bad=2),
    # expect_column_values_to_match_regex (a null does not match)
    Spec("match_regex", "expect_column_values_to_match_regex",
         {"regex": CODE_REGEX}, good=0, bad=2, column="code"),
    Spec("match_regex_flags", "expect_column_values_to_match_regex",
         {"regex": CODE_REGEX.lower(), "flags": "i"}, good=0, bad=2, column="code"),
    Spec("match_regex_case_sensitive", "expect_column_values_to_match_regex",
         {"regex": CODE_REGEX.lower()}, good=7, bad=5, column="code"),
    Spec("match_regex_raw", "expect_column_values_to_match_regex",
         {"regex": r"^[A-Z]{2}\d{3}$", "is_raw": True}, good=0, bad=2, column="code"),
    Spec("match_regex_row_condition", "expect_column_values_to_match_regex",
         {"regex": CODE_REGEX, "row_condition": "code is not null"}, good=0, bad=1, column="code"),
    # expect_table_columns_to_match_set / expect_table_column_count_to_equal (`bad` has an extra column)
    Spec("columns_match_set", "expect_table_columns_to_match_set", {"column_list": GOOD_COLUMNS}, good=0, bad=1),
    Spec("columns_match_set_lower", "expect_table_columns_to_match_set",
         {"column_list": [c.upper() for c in GOOD_COLUMNS], "transform": "lower"}, good=0, bad=1),
    Spec("column_count", "expect_table_column_count_to_equal", {"value": 9}, good=0, bad=1),
    # dbt's own test configs act on the failing rows we return
    Spec("config_severity_warn", "expect_column_values_to_be_between",
         {"min_value": 0, "max_value": 100}, good=0, bad=2, column="amount",
         config={"severity": "warn"}, bad_status="warn"),
    Spec("config_warn_if", "expect_column_values_to_be_between",
         {"min_value": 0, "max_value": 100}, good=0, bad=2, column="amount",
         config={"warn_if": ">1", "error_if": ">5"}, bad_status="warn"),
    Spec("config_error_if", "expect_column_values_to_be_between",
         {"min_value": 0, "max_value": 100}, good=0, bad=2, column="amount",
         config={"error_if": ">1"}, bad_status="fail"),
]


def _test_entry(spec: Spec, model: str) -> dict[str, Any]:
    """One `data_tests:` entry for spec on model."""
    body: dict[str, Any] = {"name": f"{spec.name}__{model}", "arguments": spec.arguments}
    if spec.config:
        body["config"] = spec.config
    return {f"dbt_expectations.{spec.test}": body}


def _schema_yml() -> dict[str, Any]:
    """The models YAML declaring every spec on both models."""
    models = []
    for model in MODELS:
        columns: dict[str, list] = {}
        model_tests = []
        for spec in SPECS:
            entry = _test_entry(spec, model)
            if spec.column:
                columns.setdefault(spec.column, []).append(entry)
            else:
                model_tests.append(entry)
        models.append({
            "name": model,
            "data_tests": model_tests,
            "columns": [{"name": name, "data_tests": tests} for name, tests in columns.items()],
        })
    return {"models": models}


def _write_project(project: Path, schema: str) -> None:
    """A throwaway dbt project using the local package by absolute path."""
    (project / "models").mkdir(parents=True)
    (project / "seeds").mkdir()
    (project / "dbt_project.yml").write_text(yaml.safe_dump({
        "name": "dbt_expectations_proof",
        "version": "1.0.0",
        "config-version": 2,
        "profile": "dbt_expectations_proof",
        "models": {"dbt_expectations_proof": {"+materialized": "table"}},
    }))
    (project / "packages.yml").write_text(yaml.safe_dump({"packages": [{"local": str(PACKAGE_DIR)}]}))
    (project / "profiles.yml").write_text(yaml.safe_dump({
        "dbt_expectations_proof": {
            "target": "proof",
            "outputs": {"proof": {
                "type": "postgres",
                "host": "{{ env_var('PGHOST') }}",
                "port": "{{ env_var('PGPORT', '5432') | as_number }}",
                "user": "{{ env_var('PGUSER') }}",
                "password": "{{ env_var('PGPASSWORD', '') }}",
                "dbname": "{{ env_var('PGDATABASE') }}",
                "schema": schema,
                "threads": 2,
            }},
        },
    }))
    (project / "seeds" / "reference_rows.csv").write_text(REFERENCE_CSV)
    (project / "models" / "good.sql").write_text(GOOD_SQL)
    (project / "models" / "bad.sql").write_text(BAD_SQL)
    (project / "models" / "_models.yml").write_text(yaml.safe_dump(_schema_yml(), sort_keys=False))


def _dbt(project: Path, *args: str):
    """Run one dbt command in-process, offline."""
    return dbtRunner().invoke([
        *args,
        "--project-dir", str(project),
        "--profiles-dir", str(project),
        "--no-version-check",
        "--no-send-anonymous-usage-stats",
        "--log-path", str(project / "logs"),
    ])


@dataclass(frozen=True)
class Build:
    deps_success: bool
    results: dict[str, tuple[str, int]]  # node name -> (status, failures)


@pytest.fixture(scope="module")
def build(pg_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    """`dbt deps` then `dbt build` of the throwaway project, in a schema of its own."""
    project = tmp_path_factory.mktemp("dbt_expectations_proof")
    schema = f"dbtexp_{uuid.uuid4().hex[:8]}"
    _write_project(project, schema)
    with pytest.MonkeyPatch.context() as env:
        for name, value in pg_env.items():
            env.setenv(name, value)
        env.setenv("DO_NOT_TRACK", "1")
        try:
            deps = _dbt(project, "deps")
            built = _dbt(project, "build")
            assert built.exception is None, built.exception
            results = {
                r.node.name: (str(r.status), r.failures or 0)
                for r in built.result.results
            }
            yield Build(deps_success=deps.success, results=results)
        finally:
            with psycopg.connect(**_conninfo(pg_env), autocommit=True) as conn:
                conn.execute(f'drop schema if exists "{schema}" cascade')


def _conninfo(pg_env: dict[str, str]) -> dict[str, str]:
    keys = {"PGHOST": "host", "PGPORT": "port", "PGUSER": "user", "PGPASSWORD": "password", "PGDATABASE": "dbname"}
    return {keys[name]: value for name, value in pg_env.items() if name in keys}


def test_deps_installs_the_local_package_offline(build: Build) -> None:
    assert build.deps_success
    assert build.results["good"][0] == "success"
    assert build.results["bad"][0] == "success"
    assert build.results["reference_rows"][0] == "success"


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
@pytest.mark.parametrize("model", MODELS)
def test_expectation(build: Build, spec: Spec, model: str) -> None:
    assert build.results[f"{spec.name}__{model}"] == spec.expected(model)


def test_every_package_test_is_exercised() -> None:
    declared = {
        line.split("(")[0].removeprefix("{% test ").strip()
        for path in PACKAGE_DIR.joinpath("macros").rglob("*.sql")
        for line in path.read_text().splitlines()
        if line.startswith("{% test ")
    }
    assert declared == {spec.test for spec in SPECS}
