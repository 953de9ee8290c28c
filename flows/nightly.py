"""The nightly runbook as a Prefect flow; operators start it with
`prefect deployment run 'nightly-customer-labels/nightly'` (served by `custlabel serve`)."""

# No `from __future__ import annotations`: Prefect validates parameters against the real types.
from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import DEFAULT

from custlabel import masking
from custlabel.config import get_settings
from custlabel.monitoring import headline_figures, pipeline_runs
from custlabel.nightly import night_steps, spark_night
from custlabel.nightly.night_steps import (
    CanaryVerdict,
    DbtStep,
    Night,
    Published,
    Target,
    TrainOutcome,
    TriggerReport,
    ValidationOutcome,
)
from custlabel.release import rollout

# I/O trouble is retried; a failed dbt test, check or gate is not: it would fail the same way.
RETRIES = {"retries": 2, "retry_delay_seconds": [10, 60], "retry_condition_fn": night_steps.is_transient}
# A hung step is stopped (and not retried), so that the run ends and releases its lock (settings.step_timeouts).
TIMEOUTS = get_settings().step_timeouts
STEP = {**RETRIES, "timeout_seconds": TIMEOUTS.step_seconds}
# A retried flow run (same run id) reuses the results of the steps that already succeeded.
KEEP = {"persist_result": True, "cache_policy": DEFAULT}


def _logged(step: DbtStep) -> DbtStep:
    for warning in step.warnings:
        get_run_logger().warning("dbt %s warning (not stopping): %s", step.command, warning)
    return step


@task(name="source freshness", **STEP, **KEEP)
def check_source_freshness(night: Night) -> DbtStep:
    return _logged(night_steps.check_freshness(night))


@task(name="dbt build", **STEP, **KEEP)
def dbt_build(night: Night) -> DbtStep:
    return _logged(night_steps.build(night))


@task(name="monitoring", **STEP)
def read_monitoring(night: Night) -> headline_figures.Headline:
    return night_steps.read_monitoring(night)


@task(name="release", **STEP)
def prepare_release(night: Night) -> rollout.ReleaseState:
    state = night_steps.prepare_release(night)
    if state.canary:
        get_run_logger().info("canary v%s labels %g%% of the customers tonight", state.canary,
                              night_steps.release_policy(night).canary.percent)
    return state


def _logged_publish(published: Published) -> Published:
    if published.rate_check_waived:
        get_run_logger().info("a new champion labels tonight: the bad-rate check against the last night is waived")
    if published.fallback:
        get_run_logger().error("FALLBACK: %s", published.fallback)
    return published


@task(name="score and publish", **STEP, **KEEP)
def score_and_publish(night: Night) -> Published:
    return _logged_publish(night_steps.score_and_publish(night))


@task(name="monitoring refresh", **STEP, **KEEP)
def refresh_monitoring(night: Night) -> headline_figures.Headline:
    _logged(night_steps.refresh_label_monitoring(night))
    night_steps.evaluate_alerts(night)
    return night_steps.read_monitoring(night)


def _logged_verdict(verdict: CanaryVerdict) -> CanaryVerdict:
    get_run_logger().info(verdict.detail)
    return verdict


@task(name="canary checks", **STEP)
def check_canary(night: Night, published: Published) -> CanaryVerdict:
    return _logged_verdict(night_steps.check_canary(night, published))


@task(name="triggers", **STEP)
def find_triggers(night: Night) -> TriggerReport:
    found = night_steps.find_triggers(night)
    for trigger in found.measured:
        get_run_logger().info("trigger %s: %s (%s)", trigger.name, "FIRED" if trigger.fired else "quiet", trigger.reason)
    return found


@task(name="train", **RETRIES, timeout_seconds=TIMEOUTS.train_seconds, **KEEP)
def train_model(night: Night) -> TrainOutcome:
    outcome = night_steps.train_and_register(night)
    for line in [*outcome.lines, outcome.detail]:
        get_run_logger().info(line)
    return outcome


@task(name="validate", **RETRIES, timeout_seconds=TIMEOUTS.validate_seconds, **KEEP)
def validate_version(night: Night, trained: TrainOutcome) -> ValidationOutcome:
    outcome = night_steps.validate_and_approve(night, trained)
    get_run_logger().info(outcome.detail)
    return outcome


@task(name="release state", **STEP)
def release_state(night: Night) -> rollout.ReleaseState:
    return night_steps.release_state(night)


def _linked_report(night: Night, path: Path) -> str:
    create_link_artifact(path.as_uri(), link_text=path.name, key="monitoring-report",
                         description=f"Monitoring report of {night.as_of_date} (opens in a browser, no server)")
    return str(path)


@task(name="monitoring report", **STEP)
def write_report(night: Night, headline: headline_figures.Headline | None) -> str:
    return _linked_report(night, night_steps.write_report(night, headline))


def publish_summary(lines: list[str]) -> None:
    """The summary in the run's logs and as a markdown artifact in the Prefect UI."""
    for line in lines:
        get_run_logger().info(line)
    create_markdown_artifact("\n".join(f"- {line}" for line in lines), key="nightly-summary")


@task(name="source freshness", **STEP)
def check_spark_sources(night: Night) -> DbtStep:
    return _logged(spark_night.check_sources(night))


@task(name="dbt build", **STEP)
def spark_dbt_build(night: Night) -> DbtStep:
    return _logged(spark_night.build(night))


@task(name="score and publish", **STEP)
def spark_score_and_publish(night: Night) -> Published:
    return _logged_publish(spark_night.score_and_publish(night))


@task(name="canary checks", **STEP)
def check_spark_canary(night: Night, published: Published) -> CanaryVerdict:
    return _logged_verdict(spark_night.check_canary(night, published))


@task(name="release log on Spark", **STEP)
def publish_spark_release_log(night: Night) -> int:
    return spark_night.publish_release_log(night)


@task(name="monitoring", **STEP)
def read_spark_monitoring(night: Night) -> headline_figures.Headline:
    return spark_night.read_monitoring(night)


@task(name="monitoring refresh", **STEP)
def refresh_spark_monitoring(night: Night) -> headline_figures.Headline:
    return spark_night.refresh_monitoring(night)


@task(name="monitoring report", **STEP)
def write_spark_report(night: Night, headline: headline_figures.Headline | None) -> str:
    return _linked_report(night, spark_night.write_report(night, headline))


def _retrain(
    run: pipeline_runs.RunRecord, night: Night
) -> tuple[TriggerReport | None, TrainOutcome | None, ValidationOutcome | None]:
    """triggers → [train] → [validate]: optional steps, each run when the one before asks for it."""
    found = run.step("triggers", find_triggers, night, required=False)
    trained = run.step("train", train_model, night, required=False) if found and found.train else None
    validated = (
        run.step("validate", validate_version, night, trained, required=False)
        if trained and trained.passed_gates else None
    )
    return found, trained, validated


def _finish(
    run: pipeline_runs.RunRecord, summary: night_steps.Summary, published: Published, verdict: CanaryVerdict | None
) -> None:
    """Publish the summary and close the run record; a fallback fails the run after it."""
    publish_summary(summary.lines)
    if published.fallback:
        run.failures.append(f"fallback: {published.fallback}")
    run.finish(summary.data, verdict.republished if verdict and verdict.republished else published.labels)


def night_on_spark(night: Night) -> str:
    """The steps on Spark (spark_night) under the target's lock and run record, as on Postgres: freshness → dbt build
    → monitoring → release → score and publish → [canary checks] → monitoring refresh → monitoring report →
    triggers → [train] → [validate] → release state → the release log copied to Spark → summary. A failed optional
    step fails the run after the summary."""
    with night_steps.one_run_at_a_time(night), pipeline_runs.record(night_steps.run_record(night)) as run:
        sources = run.step("source freshness", check_spark_sources, night)
        built = run.step("dbt build", spark_dbt_build, night)
        headline = run.step("monitoring", read_spark_monitoring, night, required=False)
        run.step("release", prepare_release, night, required=False)
        published = run.step("score and publish", spark_score_and_publish, night)
        verdict = (run.step("canary checks", check_spark_canary, night, published, required=False)
                   if published.canary_version else None)
        headline = run.step("monitoring refresh", refresh_spark_monitoring, night, required=False) or headline
        report = run.step("monitoring report", write_spark_report, night, headline, required=False)
        if headline is not None:
            headline.report = report
        found, trained, validated = _retrain(run, night)
        state = run.step("release state", release_state, night, required=False)
        run.step("release log on Spark", publish_spark_release_log, night, required=False)
        summary = spark_night.summary(night, run, sources, built, published, headline, verdict, state,
                                      found, trained, validated)
        _finish(run, summary, published, verdict)
    return str(summary)


@flow(name=night_steps.FLOW_NAME)
def nightly_customer_labels(
    as_of_date: date | None = None,
    target: Target | None = None,
    retrain: bool = False,
    dbt_vars: dict | None = None,
    skip_training: bool = False,
) -> str:
    """Tonight's customer labels: freshness → dbt build → monitoring → release → score and publish →
    [canary checks] → monitoring refresh → triggers → [train] → [validate] → summary.
    A fallback publishes and ends Failed.

    Args:
        as_of_date: the night to label (default today).
        target: dev | test | prod (default CUSTLABEL_TARGET), or spark: the same night on Spark.
        retrain: train a new challenger even when no trigger fired.
        skip_training: train nothing tonight even when a trigger fires (the triggers are still measured and recorded).
        dbt_vars: vars for every dbt step, as `dbt build --vars` takes them (e.g. {"freshness": "warn"}).

    A version trained tonight is validated and awaits the business owner's approval. Approval is not a
    parameter: `custlabel nightly --auto-approve` (demo, tests) sets it for runs it starts; it approves
    tonight's version only when every validation gate passed.
    """
    night = night_steps.plan(as_of_date, target, retrain, dbt_vars=dbt_vars, skip_training=skip_training)
    masking.protect_logs(night.settings())
    if night.target == spark_night.TARGET:
        return night_on_spark(night)
    with night_steps.one_run_at_a_time(night), pipeline_runs.record(night_steps.run_record(night)) as run:
        run.step("source freshness", check_source_freshness, night)
        run.step("dbt build", dbt_build, night)
        headline = run.step("monitoring", read_monitoring, night, required=False)
        run.step("release", prepare_release, night, required=False)
        published = run.step("score and publish", score_and_publish, night)
        verdict = run.step("canary checks", check_canary, night, published, required=False) if published.canary_version else None
        headline = run.step("monitoring refresh", refresh_monitoring, night, required=False) or headline
        report = run.step("monitoring report", write_report, night, headline, required=False)
        if headline is not None:
            headline.report = report
        found, trained, validated = _retrain(run, night)
        state = run.step("release state", release_state, night, required=False)
        summary = night_steps.summarize(night, run, headline, published, trained, verdict, found, state, validated)
        _finish(run, summary, published, verdict)
    return str(summary)
