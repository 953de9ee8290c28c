"""The nightly run's steps as plain functions; `flows/nightly.py` wraps each in a Prefect task.

Order of a night: source freshness → dbt build (snapshots, models, tests) →
monitoring figures → train when there is no model yet or when asked → score with
the champion (the rule baseline while there is none) and publish atomically →
refresh the label monitoring → run summary. One run at a time per target.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint
from prefect.runtime import flow_run
from prefect.schedules import Cron
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_SERVER_ANALYTICS_ENABLED,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    get_current_settings,
    temporary_settings,
)
from psycopg import sql

from custlabel import (
    acceptance, alerts, baseline, db, dbt_results, grants, locking, monitor, registry, release, report, retry, runs, score,
    writeback,
)
from custlabel import dbt as dbt_runner
from custlabel.config import Settings, get_settings, schema_for
from custlabel.deployed import CHALLENGER, CHAMPION
from custlabel.errors import CustlabelError
from custlabel.gates import failures
from custlabel.score import ScoreSummary
from custlabel.train import TrainConfig
from custlabel.training_data import TrainingDataError

logger = logging.getLogger(__name__)

Target = Literal["dev", "test", "prod"]

FLOW_NAME = "nightly-customer-labels"
DEPLOYMENT_NAME = "nightly"
FLOW_ENTRYPOINT = "flows/nightly.py:nightly_customer_labels"
DEFAULT_CRON = "0 2 * * *"
DEFAULT_PREFECT_PORT = 4200
# The monitoring marts that read the label history (and the stored dbt test results).
LABEL_MONITORING = [
    "label_rates", "feature_bin_shares", "feature_drift", "score_drift", "performance_estimates", "estimated_vs_realized",
    "data_test_trends", "data_quality_trends",
]
# None: train.TrainConfig() defaults; tests and benchmarks may set a smaller search.
TRAIN_CONFIG: TrainConfig | None = None
# --auto-approve of a run started in this process (`custlabel nightly`, the demo, tests): never a
# parameter of the served deployment, so no scheduled or operator-started run can approve a version.
_AUTO_APPROVE = False


@contextmanager
def auto_approval(enabled: bool = True) -> Iterator[None]:
    """Runs of the flow started here within the block approve and promote a version that passed every gate."""
    global _AUTO_APPROVE
    previous, _AUTO_APPROVE = _AUTO_APPROVE, enabled
    try:
        yield
    finally:
        _AUTO_APPROVE = previous


@dataclass(frozen=True)
class Night:
    """What one run works on: the night, the target, and the run it belongs to (plain values: Prefect hashes them)."""

    as_of_date: date
    target: str
    retrain: bool = False
    auto_approve: bool = False
    run_id: str = ""
    run_name: str = ""
    # Passed to every dbt command as `--vars` (as_of_date comes from the night).
    dbt_vars: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def schema(self) -> str:
        return schema_for(self.target)

    def settings(self) -> Settings:
        """The settings with this night's target."""
        return replace(get_settings(), target=self.target)


def last_complete_night(timezone: str, now: datetime | None = None) -> date:
    """The night that ended last in the time zone: yesterday there, so a run after midnight labels a whole day."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise CustlabelError(f"unknown time zone {timezone!r} (CUSTLABEL_TIMEZONE): use a name such as 'Europe/Rome'") from error
    return (now or datetime.now(zone)).astimezone(zone).date() - timedelta(days=1)


def plan(
    as_of_date: date | None,
    target: str | None,
    retrain: bool,
    auto_approve: bool | None = None,
    dbt_vars: dict[str, Any] | None = None,
) -> Night:
    """Tonight's run: the night (default the last complete one), the target (default CUSTLABEL_TARGET), dbt vars, the Prefect run ids.

    Args:
        auto_approve: None takes the process's switch (`auto_approval`), off unless a CLI run set it.
    """
    settings = get_settings()
    target = target or settings.target
    schema_for(target)
    return Night(
        as_of_date=as_of_date or last_complete_night(settings.timezone),
        target=target,
        retrain=retrain,
        auto_approve=_AUTO_APPROVE if auto_approve is None else auto_approve,
        run_id=str(flow_run.id or uuid.uuid4()),
        run_name=str(flow_run.name or "local"),
        dbt_vars=dict(dbt_vars or {}),
    )


def attempt() -> int:
    """Which attempt of the flow run this is (2 and up on a retry)."""
    return int(flow_run.run_count or 1)


@contextmanager
def one_run_at_a_time(night: Night) -> Iterator[None]:
    """Hold the target's lock for the run; a second run meanwhile stops with RunLockedError."""
    with locking.hold(night.settings(), night.schema, owner=f"{night.run_name} {night.run_id}"):
        yield


def run_record(night: Night) -> runs.RunRecord:
    """The row of this run in pipeline_runs."""
    parameters = {"retrain": night.retrain, "auto_approve": night.auto_approve, "dbt_vars": night.dbt_vars}
    return runs.RunRecord(
        night.settings(), night.schema, night.run_id, night.run_name, night.as_of_date, night.target, parameters, attempt()
    )


@dataclass(frozen=True)
class DbtStep:
    """A dbt command of the run: nodes run and the warnings that did not stop it."""

    command: str
    nodes: int
    warnings: list[str] = field(default_factory=list)

    @property
    def detail(self) -> str:
        text = f"{self.nodes} nodes"
        if self.warnings:
            text += f", {len(self.warnings)} warnings: " + "; ".join(self.warnings)
        return text


def _dbt(night: Night, args: list[str]) -> DbtStep:
    # Warnings and errors only on the terminal: the run's logs and record carry the rest (and logs/dbt.log).
    quiet = ["--log-level", "warn"]
    result = dbt_runner.run(
        [*args, *quiet], target=night.target, as_of_date=str(night.as_of_date), extra_vars=night.dbt_vars,
        settings=night.settings(),
    )
    return DbtStep(" ".join(args), result.nodes, list(result.warnings))


def _keep_test_results(night: Night, since: datetime) -> None:
    """Store the test results of the dbt build that just ran; a failure to store is logged, never raised."""
    try:
        dbt_results.store_latest(night.settings(), night.schema, night.run_id, night.as_of_date, since)
    except Exception as error:  # the night's labels matter more than its test history
        logger.warning("dbt test results of %s not stored: %s", night.as_of_date, error)


def _build(night: Night, args: list[str]) -> DbtStep:
    """A `dbt build` whose test results are kept in the monitoring schema, also when a test fails."""
    started = datetime.now(timezone.utc)
    try:
        return _dbt(night, args)
    finally:
        _keep_test_results(night, started)


def check_freshness(night: Night) -> DbtStep:
    """`dbt source freshness` judged at the night: a stale source past error_after stops the run."""
    return _dbt(night, ["source", "freshness"])


def build(night: Night) -> DbtStep:
    """`dbt build`: snapshots, models and every test; a failing test stops the run before scoring."""
    return _build(night, ["build"])


def refresh_label_monitoring(night: Night) -> DbtStep:
    """Rebuild the monitoring marts that read the label history, so BI sees tonight's labels."""
    return _build(night, ["build", "--select", *LABEL_MONITORING])


def evaluate_alerts(night: Night) -> list[alerts.Alert]:
    """Evaluate the rules of alerts.yml for the night into the alerts table (and notify changes)."""
    return alerts.evaluate(night.settings(), night.schema, night.as_of_date, run_id=night.run_id)


def write_report(night: Night, headline: monitor.Headline | None) -> Path:
    """The night's HTML monitoring report under .local/reports/."""
    lines = [] if headline is None else headline.lines()
    return report.write(night.settings(), night.schema, night.as_of_date, lines)


def read_monitoring(night: Night) -> monitor.Headline:
    """The monitoring marts' figures for the night, with alerts against the acceptance floors."""
    settings = night.settings()
    performance = acceptance.load(settings=settings).performance
    criteria = monitor.Criteria(performance.min_precision, performance.min_recall)
    return monitor.read(settings, night.schema, night.as_of_date, criteria)


def model_aliases(night: Night) -> dict[str, str]:
    """The registry's aliases of the model and their versions."""
    return registry.alias_versions(night.settings())


def should_train(night: Night) -> bool:
    """Train when asked, or when neither a champion nor a challenger exists yet."""
    return night.retrain or not ({CHAMPION, CHALLENGER} & set(model_aliases(night)))


@dataclass(frozen=True)
class TrainOutcome:
    """What the night's training registered, whether it passed the gates, and whether it became champion."""

    version: str
    candidate: str
    passed_gates: bool
    promoted: bool
    lines: list[str]
    failed_gates: list[str] = field(default_factory=list)
    # Why no version was trained: the history cannot train one yet (a first night on short data).
    not_trained: str = ""

    @property
    def detail(self) -> str:
        if self.not_trained:
            return f"no model yet ({self.not_trained}); the rule baseline labels until one can be trained"
        if not self.passed_gates:
            return (
                f"version {self.version} ({self.candidate}) REJECTED by the release gates, no alias moved: "
                + "; ".join(self.failed_gates)
            )
        where = "promoted to champion (auto-approve)" if self.promoted else "challenger, awaiting validation and approval"
        return f"version {self.version} ({self.candidate}) passed every gate; {where}"


def train_and_register(night: Night) -> TrainOutcome:
    """Train, judge by the gates, register (challenger when every gate passed), and with auto_approve promote it.

    The flow run's id keys the registration: a retried training reuses the version an
    earlier attempt registered instead of adding one. On a night without any model (not
    asked to retrain), a history that cannot train one yet is an outcome, not a failure:
    the rule baseline labels.
    """
    try:
        released = release.train_and_register(
            night.settings(),
            TRAIN_CONFIG or TrainConfig(),
            alias=CHALLENGER,
            run_key=night.run_id,
            auto_approved_by=f"auto-approve (nightly run {night.run_name})" if night.auto_approve else None,
            actor=f"nightly run {night.run_name}",
        )
    except TrainingDataError as error:
        if night.retrain:
            raise
        return TrainOutcome("", "", False, False, [], not_trained=str(error))
    trained = released.trained
    return TrainOutcome(
        released.version,
        trained.selection.chosen.name,
        trained.passed_gates,
        released.promoted,
        released.summary_lines(),
        failures(trained.gates),
    )


def _published_models(settings: Settings, schema: str) -> set[tuple[str, str]]:
    with db.connect(settings) as conn:
        if not db.relation_exists(conn, schema, writeback.LABELS):
            return set()
        query = sql.SQL("select distinct model_name, model_version from {}").format(
            sql.Identifier(schema, writeback.LABELS)
        )
        return {(name, version) for name, version in conn.execute(query).fetchall()}


def model_changed(night: Night) -> bool:
    """Whether tonight's champion differs from the model behind the published labels."""
    settings = night.settings()
    previous = _published_models(settings, night.schema)
    if not previous:
        return False
    champion = model_aliases(night).get(CHAMPION)
    if champion is None:
        return all(name != baseline.MODEL_NAME for name, _ in previous)
    return (settings.model_name, champion) not in previous


def score_and_publish(night: Night, waive_rate_check: bool = False) -> ScoreSummary:
    """Label tonight's customers (customer_features_current, checked to hold this night) with the
    champion, or the rule baseline while there is none, and publish in one transaction.

    Args:
        waive_rate_check: skip the bad-rate check against the previous night (the night
            a new champion takes over, whose rate is expected to differ from the old model's).
    """
    settings = night.settings()
    request = score.ScoreRequest(
        night.schema,
        expected_as_of=night.as_of_date,
        force=waive_rate_check,
        max_bad_share=score.acceptance_bound(settings),
    )
    summary = score.score(settings, request)
    grants.ensure_for_nightly(settings, night.schema)
    return summary


@dataclass
class Summary:
    """The closing figures of a run: logged, returned by the flow, stored in pipeline_runs."""

    lines: list[str]
    data: dict[str, Any]

    def __str__(self) -> str:
        return "\n".join(self.lines)


def summarize(
    night: Night,
    record: runs.RunRecord,
    headline: monitor.Headline | None,
    labels: ScoreSummary | None,
    trained: TrainOutcome | None,
) -> Summary:
    """What the night did: steps and durations, the labels published, the monitoring headline."""
    steps = [step for step in record.steps if step.attempt == record.attempt]
    lines = [
        f"{FLOW_NAME} run {night.run_name} for {night.as_of_date}, target {night.target} ({night.schema})",
        "steps: " + ", ".join(f"{step.name} {step.seconds:.1f} s ({step.state})" for step in steps),
    ]
    if trained is not None:
        lines.append(f"training: {trained.detail}")
    if labels is not None:
        for part in labels.slices:
            lines.append(f"labels: {part.rows:,} customers by {part.model_name} v{part.model_version}"
                         f" ({part.role}, {part.engine} engine)")
        lines.append(
            f"labels: {labels.customers:,} customers as of {labels.as_of_date}, bad rate {labels.bad_rate:.1%}; "
            f"select * from {labels.schema}.customer_labels"
        )
    if headline is not None:
        lines.extend(headline.lines())
    published = None if labels is None else {
        "customers": labels.customers, "bad_rate": labels.bad_rate, "slices": [asdict(part) for part in labels.slices]
    }
    data = {
        "labels": published,
        "training": None if trained is None else asdict(trained),
        "monitoring": None if headline is None else headline.as_dict(),
    }
    return Summary(lines, data)


def is_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry condition of the tasks: retry lost connections, lock waits and I/O trouble, never a failed dbt test, check or gate."""
    return retry.is_transient(state.result(raise_on_failure=False))


def load_flow(settings: Settings | None = None) -> Flow:
    """The nightly flow, loaded from flows/nightly.py of the project."""
    settings = settings or get_settings()
    path, function = FLOW_ENTRYPOINT.split(":")
    return load_flow_from_entrypoint(f"{settings.project_dir / path}:{function}")


@contextmanager
def patient_prefect(startup_seconds: int = 180) -> Iterator[None]:
    """Prefect settings for a machine shared with other work: a patient ephemeral-server start, no telemetry.

    Prefect's local mode starts a temporary API server per process and gives up
    after 20 s by default, which a busy 2-core machine can exceed.
    """
    timeout = max(get_current_settings().server.ephemeral.startup_timeout_seconds, startup_seconds)
    with temporary_settings(
        updates={PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: timeout, PREFECT_SERVER_ANALYTICS_ENABLED: False}
    ):
        yield


def _api_is_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the serving process dies, so no server is left behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: serve's own cleanup stops the server


@contextmanager
def prefect_api(settings: Settings, port: int = DEFAULT_PREFECT_PORT, timeout: float = 120.0) -> Iterator[str]:
    """The Prefect API to serve against: PREFECT_API_URL when set, else a local `prefect server` started here.

    A schedule needs a server (Prefect's ephemeral mode runs no scheduler); a
    local server on 127.0.0.1:<port> shares Prefect's default database, so
    `prefect deployment run` works from another terminal with or without
    PREFECT_API_URL set, and the UI is at http://127.0.0.1:<port>.
    """
    if settings.prefect_api_url:
        yield settings.prefect_api_url
        return
    url = f"http://127.0.0.1:{port}/api"
    process = None
    if not _api_is_up(url):
        settings.local_dir.mkdir(parents=True, exist_ok=True)
        log_path = settings.local_dir / "prefect-server.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while not _api_is_up(url):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
                raise CustlabelError(f"the local Prefect server on port {port} did not start; {log_path} ends:\n{tail}")
            time.sleep(0.5)
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def serve(
    settings: Settings | None = None,
    cron: str = DEFAULT_CRON,
    timezone: str | None = None,
    target: str | None = None,
    prefect_port: int = DEFAULT_PREFECT_PORT,
) -> None:
    """Serve the deployment `nightly-customer-labels/nightly` on a cron schedule until interrupted."""
    settings = settings or get_settings()
    target = target or settings.target
    timezone = timezone or settings.timezone
    schema_for(target)
    flow = load_flow(settings)
    with patient_prefect(), prefect_api(settings, prefect_port) as url:
        print(f"Prefect API {url} (UI: {url.removesuffix('/api')}); nightly at '{cron}' ({timezone}), target {target}")
        flow.serve(
            name=DEPLOYMENT_NAME,
            schedules=[Cron(cron, timezone=timezone)],
            parameters={"target": target},
            tags=["custlabel", target],
            description=f"Nightly customer labels for target {target}: freshness, dbt build, monitoring, "
            "training when needed, scoring and publishing.",
        )


def run_once(
    as_of_date: date | None = None,
    target: str | None = None,
    retrain: bool = False,
    auto_approve: bool = False,
    settings: Settings | None = None,
    dbt_vars: dict[str, Any] | None = None,
) -> str:
    """Run the flow once in this process (Prefect's local mode unless PREFECT_API_URL is set); returns the summary."""
    flow = load_flow(settings)
    with patient_prefect(), auto_approval(auto_approve):
        return flow(as_of_date=as_of_date, target=target, retrain=retrain, dbt_vars=dbt_vars or {})
