"""Validation benchmark: `custlabel validate` at N customers, reports included, with its peak memory.

`run`: the test schema gets the scoring benchmark's synthetic features for two nights (the
version's test night and tonight), a training_set of the test night with outcomes drawn
from the same known rule, and a stand-in rule baseline. A logistic regression stand-in is
registered in the benchmark's MLflow store, then validated in a fresh process without
its dbt build (the `warehouse` section times dbt at the same size). Peak memory is the
largest ru_maxrss of that process and the processes it starts (smoke test, scorings).

`run_on_demo_world`: after the warehouse and training sections, the version they trained
on the demo world is validated as an operator would, dbt build of analytics_test
included: once into an empty test schema (its one-time first build), then for the next
night (the steady state: dbt adds the night the test schema does not hold yet).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

from psycopg import sql
from sklearn.linear_model import LogisticRegression

from custlabel.config import Settings
from custlabel.devtools.benchmarks import fresh_process
from custlabel.devtools.benchmarks.scoring import (
    create_synthetic_features,
    create_synthetic_rule_baseline,
    fit_stand_in,
    read_features,
)
from custlabel.release import validate_version
from custlabel.training import acceptance, model_families, registry
from custlabel.training.features import MODEL_FEATURES
from custlabel.warehouse import db

TARGET_SECONDS = 600.0
# synthetic_outcome's rule in SQL: the known logistic rule the stand-in learns.
OUTCOME_LOGIT = (
    "-4.5 + 0.004 * coalesce(days_since_last_sale, 600) + 0.35 * overdue_invoices_count"
    " + 2.0 * return_rate_365d - 0.15 * sales_count_90d + case when segment = 'online' then 0.6 else 0 end"
)


def create_test_environment(settings: Settings, customers: int, night: dt.date, tonight: dt.date) -> None:
    """Synthetic customer_features (night and tonight), training_set (night) and rule_baseline_scores in the test schema."""
    schema = settings.schema
    with db.connect(settings) as conn:
        create_synthetic_features(conn, schema, customers, [night, tonight])
        for table in ("training_set", "rule_baseline_scores"):
            conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(schema, table)))
        conn.execute(
            sql.SQL(
                "create table {training} as select f.*, f.as_of_date + 90 as window_end, 0::float8 as net_paid_revenue,"
                " 0 as unpaid_invoices_count, (random() < 1 / (1 + exp(-({logit}))))::int as is_bad"
                " from {features} as f where f.as_of_date = {night}"
            ).format(
                training=sql.Identifier(schema, "training_set"),
                logit=sql.SQL(OUTCOME_LOGIT),
                features=sql.Identifier(schema, "customer_features"),
                night=sql.Literal(night),
            )
        )
        create_synthetic_rule_baseline(conn, schema)


def register_stand_in(settings: Settings, night: dt.date) -> str:
    """A logistic regression fitted on the synthetic outcomes, registered with its test night."""
    frame = read_features(settings, settings.schema, 20_000, "customer_features")
    model = fit_stand_in(frame, LogisticRegression(max_iter=1000), threshold=0.3)
    with registry.training_run(settings, "validation benchmark stand-in", {"kind": "benchmark"}):
        version = registry.register_model(
            settings, model.pipeline, frame[MODEL_FEATURES].head(200), model.threshold, model_families.trusted_types()
        )
    registry.tag_version(settings, version, {"test_date": str(night), "threshold": repr(model.threshold)})
    return version


def _validate_child(job: Path) -> dict:
    """In the child process: validate once, report time, steps and peak memory."""
    settings, version, as_of_date = pickle.loads(job.read_bytes())
    started = time.perf_counter()
    result = validate_version.validate(
        settings, version, acceptance.load(settings=settings), as_of_date=as_of_date, build_warehouse=as_of_date is not None
    )
    seconds = time.perf_counter() - started
    peak_kb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return {
        "seconds": seconds,
        "peak_mb": peak_kb / 1024,
        "steps": result.seconds,
        "verdicts": [f"{gate.name} {gate.verdict}" for gate in result.gates],
        "report": str(result.report),
    }


def _validate_in_child(settings: Settings, version: str, as_of_date: str | None) -> dict:
    """Validate in a fresh process (with the dbt build of the night as_of_date, none when None); its figures."""
    job = (replace(settings, local_dir=settings.local_dir / "bench"), version, as_of_date)
    return fresh_process.run("custlabel.devtools.benchmarks.validation", job, "validation")


def _figure_lines(title: str, figures: dict) -> list[str]:
    met = figures["seconds"] < TARGET_SECONDS
    return [
        f"  {title}: {figures['seconds']:.1f} s wall, peak RSS {figures['peak_mb']:,.0f} MB"
        f" (largest of the validate process and its smoke and scoring processes)  target <10 min: {'met' if met else 'MISSED'}",
        "    steps: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in figures["steps"].items()),
        "    verdicts: " + ", ".join(figures["verdicts"]),
        f"    report: {figures['report']}",
    ]


def run(settings: Settings, customers: int) -> list[str]:
    """Benchmark `custlabel validate` at `customers` synthetic customers; one line per figure."""
    test = replace(settings, target=validate_version.TEST_TARGET)
    tonight = dt.date.today()
    night = tonight - dt.timedelta(days=120)
    lines = [f"validation benchmark: {customers:,} synthetic customers in {test.schema}, {os.cpu_count()} CPU cores"]
    started = time.perf_counter()
    create_test_environment(test, customers, night, tonight)
    version = register_stand_in(test, night)
    lines.append(f"  synthetic test environment and stand-in version {version} in {time.perf_counter() - started:.1f} s (not counted)")
    return lines + _figure_lines("custlabel validate (without dbt build)", _validate_in_child(settings, version, None))


def run_on_demo_world(settings: Settings, customers: int, end_date: dt.date) -> list[str]:
    """Validate the newest version trained on the demo world, dbt build included: first build, then the next night."""
    version = max(registry.version_tags(settings), key=int)
    lines = [f"validation on the demo world: {customers:,} customers, version {version}, {os.cpu_count()} CPU cores"]
    test_schema = replace(settings, target=validate_version.TEST_TARGET).schema
    with db.connect(settings) as conn:
        schemas = conn.execute(
            "select schema_name from information_schema.schemata where schema_name = %s or schema_name like %s",
            [test_schema, test_schema + r"\_%"],
        ).fetchall()
        for (schema,) in schemas:  # the test environment's models, snapshots and monitoring: a first build
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
    for title, night in (("first build of the test environment", end_date), ("next night", end_date + dt.timedelta(days=1))):
        figures = _validate_in_child(settings, version, night.isoformat())
        lines += _figure_lines(f"custlabel validate with dbt build, {title} ({night})", figures)
    return lines


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_validate_child(Path(sys.argv[2]))))
