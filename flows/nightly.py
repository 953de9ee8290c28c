"""The nightly runbook as a Prefect flow; operators start it with
`prefect deployment run 'nightly-customer-labels/nightly'` (served by `custlabel serve`)."""

# No `from __future__ import annotations`: Prefect validates parameters against the real types.
from datetime import date

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import DEFAULT

from custlabel import monitor, nightly, runs
from custlabel.nightly import DbtStep, Night, Target, TrainOutcome
from custlabel.score import ScoreSummary

# I/O trouble is retried; a failed dbt test, check or gate is not: it would fail the same way.
RETRIES = {"retries": 2, "retry_delay_seconds": [10, 60], "retry_condition_fn": nightly.is_transient}
# A retried flow run (same run id) reuses the results of the steps that already succeeded.
KEEP = {"persist_result": True, "cache_policy": DEFAULT}


def _logged(step: DbtStep) -> DbtStep:
    for warning in step.warnings:
        get_run_logger().warning("dbt %s warning (not stopping): %s", step.command, warning)
    return step


@task(name="source freshness", **RETRIES, **KEEP)
def check_source_freshness(night: Night) -> DbtStep:
    return _logged(nightly.check_freshness(night))


@task(name="dbt build", **RETRIES, **KEEP)
def dbt_build(night: Night) -> DbtStep:
    return _logged(nightly.build(night))


@task(name="monitoring", **RETRIES)
def read_monitoring(night: Night) -> monitor.Headline:
    return nightly.read_monitoring(night)


@task(name="train", **RETRIES, **KEEP)
def train_model(night: Night) -> TrainOutcome:
    outcome = nightly.train_and_register(night)
    for line in [*outcome.lines, outcome.detail]:
        get_run_logger().info(line)
    return outcome


@task(name="score and publish", **RETRIES, **KEEP)
def score_and_publish(night: Night) -> ScoreSummary:
    waive = nightly.model_changed(night)
    if waive:
        get_run_logger().info("a new champion labels tonight: the bad-rate check against the last night is waived")
    return nightly.score_and_publish(night, waive_rate_check=waive)


@task(name="monitoring refresh", **RETRIES, **KEEP)
def refresh_monitoring(night: Night) -> monitor.Headline:
    _logged(nightly.refresh_label_monitoring(night))
    nightly.evaluate_alerts(night)
    return nightly.read_monitoring(night)


@task(name="monitoring report", **RETRIES)
def write_report(night: Night, headline: monitor.Headline | None) -> str:
    path = nightly.write_report(night, headline)
    create_link_artifact(path.as_uri(), link_text=path.name, key="monitoring-report",
                         description=f"Monitoring report of {night.as_of_date} (opens in a browser, no server)")
    return str(path)


def publish_summary(summary: nightly.Summary) -> None:
    """The summary in the run's logs and as a markdown artifact in the Prefect UI."""
    for line in summary.lines:
        get_run_logger().info(line)
    create_markdown_artifact("\n".join(f"- {line}" for line in summary.lines), key="nightly-summary")


@flow(name=nightly.FLOW_NAME)
def nightly_customer_labels(
    as_of_date: date | None = None,
    target: Target | None = None,
    retrain: bool = False,
    dbt_vars: dict | None = None,
) -> str:
    """Tonight's customer labels: freshness → dbt build → monitoring → [train] → score and publish → summary.

    Args:
        as_of_date: the night to label (default today).
        target: dev | test | prod (default CUSTLABEL_TARGET).
        retrain: train a new challenger even when a model exists.
        dbt_vars: vars for every dbt step, as `dbt build --vars` takes them (e.g. {"freshness": "warn"}).

    Approval is not a parameter: `custlabel nightly --auto-approve` (demo, tests) sets it for runs it starts.
    """
    night = nightly.plan(as_of_date, target, retrain, dbt_vars=dbt_vars)
    with nightly.one_run_at_a_time(night), runs.record(nightly.run_record(night)) as run:
        run.step("source freshness", check_source_freshness, night)
        run.step("dbt build", dbt_build, night)
        headline = run.step("monitoring", read_monitoring, night, required=False)
        trained = run.step("train", train_model, night, required=False) if nightly.should_train(night) else None
        labels = run.step("score and publish", score_and_publish, night)
        headline = run.step("monitoring refresh", refresh_monitoring, night, required=False) or headline
        report = run.step("monitoring report", write_report, night, headline, required=False)
        if headline is not None:
            headline.report = report
        summary = nightly.summarize(night, run, headline, labels, trained)
        publish_summary(summary)
        run.finish(summary.data, labels)
    return str(summary)
