"""The nightly run's steps as plain functions; `flows/nightly.py` wraps each in a Prefect task.

Order of a night: source freshness → dbt build (snapshots, models, tests) →
monitoring figures → release (an approved version starts its canary) → score with
the champion (the rule baseline while there is none) and the canary on its slice,
publish atomically → canary checks (promote after N healthy nights, roll back at the
first failure) → refresh the label monitoring → triggers → train when one fired →
run summary. One run at a time per target. How Prefect serves or runs the flow: `custlabel.nightly.serving`.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect.runtime import deployment, flow_run
from psycopg import sql

from custlabel import gate_verdicts
from custlabel.config import Settings, get_settings, schema_for
from custlabel.errors import CustlabelError
from custlabel.gate_verdicts import failures
from custlabel.monitoring import alerts, headline_figures, nightly_report, pipeline_runs
from custlabel.release import (
    approval,
    canary_health,
    lifecycle,
    registration,
    release_log,
    rollout,
    triggers,
    validate_version,
)
from custlabel.release import release_policy as release_policy_file
from custlabel.scoring import grants, score, writeback
from custlabel.scoring.score import ScoreSummary
from custlabel.training import acceptance, model_search, registry
from custlabel.training.deployed_model import CANARY, CHALLENGER, DeployedModel, model_label
from custlabel.training.training_data import TrainingDataError
from custlabel.warehouse import db, dbt_runner, dbt_test_history, freshness, locking, retry

logger = logging.getLogger(__name__)

Target = Literal["dev", "test", "prod", "spark"]

FLOW_NAME = "nightly-customer-labels"
# The monitoring marts that read tonight's labels or the stored dbt test results (their tag, in their YAML).
LABEL_MONITORING = "tag:label_monitoring"


@dataclass(frozen=True)
class Night:
    """What one run works on: the night, the target, and the run it belongs to (plain values: Prefect hashes them).

    Its configuration is its settings' (the environment's when planned): the reviewed files
    (CUSTLABEL_ACCEPTANCE_FILE, CUSTLABEL_RELEASE_FILE, CUSTLABEL_ALERTS_FILE) and the training's
    search size (CUSTLABEL_SEARCH_*); `auto_approve` is fixed when the night is planned.
    """

    as_of_date: date
    target: str
    retrain: bool = False
    skip_training: bool = False
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


def approves(settings: Settings) -> bool:
    """Whether tonight's run approves a version that passed every gate: CUSTLABEL_AUTO_APPROVE, never in a deployment's run."""
    if settings.auto_approve and deployment.id is not None:
        logger.error("CUSTLABEL_AUTO_APPROVE is ignored in a run of deployment %s: a scheduled or operator-started run"
                     " never approves a version (unset it where the deployment is served)", deployment.name)
        return False
    return settings.auto_approve


def plan(
    as_of_date: date | None,
    target: str | None,
    retrain: bool,
    dbt_vars: dict[str, Any] | None = None,
    skip_training: bool = False,
) -> Night:
    """Tonight's run: the night (default the last complete one), the target (default CUSTLABEL_TARGET), dbt vars, the Prefect run ids."""
    if retrain and skip_training:
        raise CustlabelError("retrain and skip_training ask for opposite things: choose one (--retrain or --skip-training)")
    settings = get_settings()
    target = target or settings.target
    schema_for(target)
    return Night(
        as_of_date=as_of_date or last_complete_night(settings.timezone),
        target=target,
        retrain=retrain,
        skip_training=skip_training,
        auto_approve=approves(settings),
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
    with locking.hold(night.settings(), night.schema, owner=f"{night.run_name} {night.run_id}"), release_log.within_run(night.run_id):
        yield


def run_record(night: Night) -> pipeline_runs.RunRecord:
    """The row of this run in pipeline_runs."""
    parameters = {"retrain": night.retrain, "skip_training": night.skip_training, "auto_approve": night.auto_approve, "dbt_vars": night.dbt_vars}
    return pipeline_runs.RunRecord(
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


def run_dbt(night: Night, args: list[str]) -> DbtStep:
    # Warnings and errors only on the terminal: the run's logs and record carry the rest, and logs/dbt.log every
    # statement with its seconds (--log-level alone would set the file's level too), unless the operator set
    # dbt's own DBT_LOG_LEVEL_FILE.
    quiet = ["--log-level", "warn", "--log-level-file", os.environ.get("DBT_LOG_LEVEL_FILE", "debug")]
    result = dbt_runner.run(
        night.settings(), [*args, *quiet], target=night.target, as_of_date=str(night.as_of_date),
        extra_vars=night.dbt_vars,
    )
    return DbtStep(" ".join(args), result.nodes, list(result.warnings))


# Where a build's test results go: the target's monitoring schema, on its engine.
TestResultsStore = Callable[["Night", dbt_test_history.RunResults], None]


def _store_on_postgres(night: Night, results: dbt_test_history.RunResults) -> None:
    dbt_test_history.store(night.settings(), night.schema, night.run_id, night.as_of_date, results)


def _keep_test_results(night: Night, since: datetime, store: TestResultsStore) -> None:
    """Store the test results of the dbt build that just ran; a failure to store is logged, never raised."""
    try:
        store(night, dbt_test_history.read(dbt_test_history.results_path(night.settings()), since))
    except Exception as error:  # the night's labels matter more than its test history
        logger.warning("dbt test results of %s not stored: %s", night.as_of_date, error)


# A night's builds leave dbt's unit tests out, as dbt advises for production: their inputs are fixed, so they prove
# the code, not tonight's data. They run where the code changes: `dbt build` by hand, the test environment's build
# (`custlabel validate`), the project's CI.
WITHOUT_UNIT_TESTS = ["--exclude-resource-type", "unit_test"]


def build_keeping_results(night: Night, args: list[str], store: TestResultsStore = _store_on_postgres) -> DbtStep:
    """A night's `dbt build`, its data tests' results kept in the monitoring schema, also when a test fails."""
    started = datetime.now(timezone.utc)
    try:
        return run_dbt(night, [*args, *WITHOUT_UNIT_TESTS])
    finally:
        _keep_test_results(night, started, store)


def check_freshness(night: Night) -> DbtStep:
    """Source freshness of the night (custlabel.warehouse.freshness): a source that does not cover it stops the run."""
    checked = freshness.check(night.settings(), night.as_of_date, night.dbt_vars)
    return DbtStep("source freshness", checked.sources, checked.warnings)


def build(night: Night) -> DbtStep:
    """`dbt build`: snapshots, models and every test; a failing test stops the run before scoring."""
    return build_keeping_results(night, ["build"])


def refresh_label_monitoring(night: Night) -> DbtStep:
    """Rebuild the monitoring marts that read the label history, so BI sees tonight's labels."""
    return build_keeping_results(night, ["build", "--select", LABEL_MONITORING])


def evaluate_alerts(night: Night) -> list[alerts.Alert]:
    """Evaluate the alert rules (CUSTLABEL_ALERTS_FILE, else alerts.yml) for the night into the alerts table (and notify changes)."""
    return alerts.evaluate(night.settings(), night.schema, night.as_of_date, run_id=night.run_id)


def write_report(night: Night, headline: headline_figures.Headline | None) -> Path:
    """The night's HTML monitoring report under .local/reports/."""
    lines = [] if headline is None else headline.lines()
    return nightly_report.write(night.settings(), night.schema, night.as_of_date, lines)


def monitoring_criteria(night: Night) -> headline_figures.Criteria:
    """The acceptance floors the night's realized performance is held to (acceptance.yml)."""
    performance = acceptance.load(settings=night.settings()).performance
    return headline_figures.Criteria(performance.min_precision, performance.min_recall)


def read_monitoring(night: Night) -> headline_figures.Headline:
    """The monitoring marts' figures for the night, with alerts against the acceptance floors."""
    return headline_figures.read(night.settings(), night.schema, night.as_of_date, monitoring_criteria(night))


def release_policy(night: Night) -> release_policy_file.ReleasePolicy:
    """The night's release policy (CUSTLABEL_RELEASE_FILE, else release.yml)."""
    return release_policy_file.load(settings=night.settings())


def _actor(night: Night) -> str:
    return f"nightly run {night.run_name}"


def release_state(night: Night) -> rollout.ReleaseState:
    """Where the versions stand: champion, canary and its nights, versions awaiting approval."""
    return rollout.read_state(night.settings(), release_policy(night))


def prepare_release(night: Night) -> rollout.ReleaseState:
    """Repair aliases that disagree with the release log (loudly), then step 3a: put the newest approved
    version on the canary slice when no canary runs."""
    settings = night.settings()
    repaired = lifecycle.reconcile(settings)
    state = rollout.read_state(settings, release_policy(night), repaired)
    return rollout.start_canary(settings, state, night.as_of_date, _actor(night))


@dataclass(frozen=True)
class Published:
    """Tonight's published labels and who labelled them: champion (or its fallback), canary, and what went wrong."""

    labels: ScoreSummary
    champion: str
    canary_version: str | None = None
    canary_percent: float = 0.0
    canary_seconds: float = 0.0
    fallback: str | None = None
    canary_rolled_back: str | None = None
    rate_check_waived: bool = False

    @property
    def detail(self) -> str:
        text = f"{self.labels.customers:,} labels by {self.champion}"
        if self.canary_version:
            text += f", canary v{self.canary_version} on {self.canary_percent:g}%"
        if self.fallback:
            text += f"; FALLBACK: {self.fallback}"
        if self.canary_rolled_back:
            text += f"; canary rolled back: {self.canary_rolled_back}"
        return text


def _last_night_model(settings: Settings, schema: str) -> tuple[str, str] | None:
    """The model that labelled most customers of the last published night."""
    with db.connect(settings) as conn:
        if not db.relation_exists(conn, schema, writeback.LABELS):
            return None
        return conn.execute(sql.SQL(
            "select model_name, model_version from {} group by 1, 2 order by count(*) desc limit 1"
        ).format(sql.Identifier(schema, writeback.LABELS))).fetchone()


class LabelEngine(Protocol):
    """Where a night's labels are scored and published, and read back by the canary checks."""

    def publish(self, night: Night, lineup: rollout.Lineup, percent: float, waive: bool) -> ScoreSummary:
        """Label tonight's customers by the lineup (the canary on its slice) and publish them in one swap."""
        ...

    def last_night_model(self, night: Night) -> tuple[str, str] | None:
        """The model that labelled most customers of the last published night."""
        ...

    def grant_readers(self, night: Night) -> None:
        """Let the target's readers read what was published."""
        ...

    def canary_night(self, night: Night, canary_model: DeployedModel, champion: DeployedModel, percent: float,
                     seconds: float) -> canary_health.SliceNight:
        """Tonight's canary slice as published, with the champion's shadow labels of it."""
        ...

    def canary_realized(self, night: Night, canary_model: DeployedModel) -> canary_health.Realized | None:
        """Realized precision of the canary's matured slice nights, and the champion's."""
        ...


class OnPostgres:
    """The target's Postgres schema: score.score publishes, canary_health reads back."""

    def publish(self, night: Night, lineup: rollout.Lineup, percent: float, waive: bool) -> ScoreSummary:
        return _score(night, lineup, percent, waive)

    def last_night_model(self, night: Night) -> tuple[str, str] | None:
        return _last_night_model(night.settings(), night.schema)

    def grant_readers(self, night: Night) -> None:
        grants.ensure_for_nightly(night.settings(), night.schema)

    def canary_night(self, night: Night, canary_model: DeployedModel, champion: DeployedModel, percent: float,
                     seconds: float) -> canary_health.SliceNight:
        return canary_health.read_night(night.settings(), night.schema, night.as_of_date, canary_model, champion,
                                        percent, seconds)

    def canary_realized(self, night: Night, canary_model: DeployedModel) -> canary_health.Realized | None:
        return canary_health.read_realized(night.settings(), night.schema, canary_model)


POSTGRES = OnPostgres()


def model_changed(night: Night, lineup: rollout.Lineup, engine: LabelEngine = POSTGRES) -> bool:
    """Whether a new champion takes over tonight (never true for a fallback: its rate must be checked)."""
    if lineup.fallback:
        return False
    previous = engine.last_night_model(night)
    return previous is not None and tuple(previous) != (lineup.champion.name, str(lineup.champion.version))


def _score(night: Night, lineup: rollout.Lineup, percent: float, waive: bool) -> ScoreSummary:
    request = score.ScoreRequest(
        night.schema, expected_as_of=night.as_of_date, force=waive,
        canary_percent=percent if lineup.canary else 0.0, canary_alias=CANARY,
        max_bad_share=score.acceptance_bound(night.settings()),
    )
    return score.score(night.settings(), request, models=rollout.LineupModels(lineup))


class FallbackNotPublishedError(CustlabelError):
    """The fallback's labels failed a publish check (never waived for a fallback): the last labels stay."""


def score_and_publish(night: Night, engine: LabelEngine = POSTGRES) -> Published:
    """Label tonight's customers (the night's features, checked to hold this night) and publish them in one
    swap on the engine: the canary on its slice, the champion on the rest, or the rule baseline while there is none.

    A champion that cannot be loaded, or loads but fails to label, is replaced by the
    previous champion or the rule baseline (a fallback, recorded once a night and reported;
    its label-rate check is never waived). A canary that fails to label its slice is
    rolled back and the champion labels all.
    """
    settings = night.settings()
    lineup = rollout.lineup(settings, night.schema)
    if lineup.fallback:
        rollout.record_fallback(settings, lineup, night.as_of_date, _actor(night))
    if lineup.canary_refused:
        canary = registry.alias_versions(settings)[CANARY]
        rollout.roll_back_canary(settings, canary, night.as_of_date, _actor(night), lineup.canary_refused)
    waive = model_changed(night, lineup, engine)
    percent = release_policy(night).canary.percent
    rolled_back = None
    try:
        try:
            labels = engine.publish(night, lineup, percent, waive)
        except score.ChampionScoringError as error:
            lineup = rollout.after_scoring_failure(settings, lineup, str(error))
            rollout.record_fallback(settings, lineup, night.as_of_date, _actor(night))
            waive = False
            labels = engine.publish(night, lineup, percent, waive)
    except score.CanaryScoringError as error:
        failure = error.__cause__ or error
        version = str(lineup.canary.version)
        rolled_back = f"the canary failed to label its slice: {type(failure).__name__}: {failure}"[:1000]
        rollout.record_canary_night(settings, version, night.as_of_date, [canary_health.scoring_failed(failure)], _actor(night))
        rollout.roll_back_canary(settings, version, night.as_of_date, _actor(night), rolled_back)
        lineup = rollout.Lineup(lineup.champion, None, lineup.fallback)
        labels = engine.publish(night, lineup, percent, waive)
    except Exception as error:
        if lineup.fallback:
            raise FallbackNotPublishedError(f"fallback: {lineup.fallback}; not published: {error}") from error
        raise
    engine.grant_readers(night)
    canary_part = next((part for part in labels.slices if part.role == "canary"), None)
    return Published(
        labels=labels,
        champion=lineup.champion.label,
        canary_version=None if canary_part is None else canary_part.model_version,
        canary_percent=percent if canary_part else 0.0,
        canary_seconds=0.0 if canary_part is None else canary_part.seconds,
        fallback=lineup.fallback,
        canary_rolled_back=rolled_back,
        rate_check_waived=waive,
    )


@dataclass(frozen=True)
class CanaryVerdict:
    """A canary night's checks and what followed: nothing yet, promoted, or rolled back (labels republished)."""

    version: str
    healthy: bool
    checks: list[dict[str, Any]]
    healthy_nights: int
    outcome: str
    republished: ScoreSummary | None = None

    @property
    def detail(self) -> str:
        return f"canary v{self.version}: {self.outcome}"


def check_canary(night: Night, published: Published, engine: LabelEngine = POSTGRES) -> CanaryVerdict:
    """Tonight's canary checks against the champion on the same slice, read from the engine that published it;
    promote after N healthy nights, roll back at the first failed check (and republish tonight's labels by the
    champion alone)."""
    settings, policy = night.settings(), release_policy(night)
    version = str(published.canary_version)
    canary_model = registry.load_version(settings, version, CANARY)
    champion = rollout.lineup(settings, night.schema).champion
    figures = engine.canary_night(night, canary_model, champion, published.canary_percent, published.canary_seconds)
    bounds = acceptance.load(settings=settings).performance
    results = canary_health.health_checks(policy.canary, bounds, figures, engine.canary_realized(night, canary_model))
    healthy = rollout.record_canary_night(settings, version, night.as_of_date, results, _actor(night))
    nights = rollout.canary_nights(settings, version)
    checks = [result.as_dict() for result in results]
    if not healthy:
        reason = "canary checks failed: " + "; ".join(gate_verdicts.failures(results))
        rollout.roll_back_canary(settings, version, night.as_of_date, _actor(night), reason)
        # Judged as tonight's publish was: the champion's first full night after a promotion is a model change.
        republished = engine.publish(night, rollout.Lineup(champion), 0.0, waive=published.rate_check_waived)
        outcome = f"{reason}; rolled back, tonight's labels republished by {champion.label}"
        return CanaryVerdict(version, False, checks, nights, outcome, republished)
    if nights >= policy.canary.nights:
        rollout.promote(settings, version, night.as_of_date, _actor(night), f"{nights} healthy canary nights")
        return CanaryVerdict(version, True, checks, nights, f"healthy ({nights} of {policy.canary.nights} nights): promoted to champion")
    return CanaryVerdict(version, True, checks, nights, f"healthy ({nights} of {policy.canary.nights} nights)")


@dataclass(frozen=True)
class TriggerReport:
    """Tonight's triggers as measured, and what was done: retrain, or nothing while a version is on its way."""

    measured: list[triggers.Trigger]
    action: str

    @property
    def fired(self) -> list[triggers.Trigger]:
        return [trigger for trigger in self.measured if trigger.fired]

    @property
    def train(self) -> bool:
        return self.action == "retrain"

    @property
    def detail(self) -> str:
        return "; ".join(f"{t.name} fired" for t in self.fired) + f" → {self.action}" if self.fired else "none fired"


def find_triggers(night: Night) -> TriggerReport:
    """Tonight's triggers, measured; the fired ones are recorded, and train unless a version is already on its way."""
    settings, policy = night.settings(), release_policy(night)
    state = release_state(night)
    measured = triggers.evaluate(settings, night.schema, night.as_of_date, policy, state, night.retrain)
    fired = [trigger for trigger in measured if trigger.fired]
    if not fired:
        return TriggerReport(measured, "none")
    cooling = None if night.retrain else triggers.cooling_off(settings, night.as_of_date, policy)
    if night.skip_training:
        action = "none: training skipped tonight (--skip-training)"
    elif state.on_its_way and not night.retrain:
        action = f"none: v{state.on_its_way} is already on its way"
    elif cooling:
        action = f"none: {cooling}"
    else:
        action = "retrain"
    triggers.record(settings, night.as_of_date, fired, _actor(night), action)
    return TriggerReport(measured, action)


@dataclass(frozen=True)
class TrainOutcome:
    """What the night's training registered, and whether it passed the training gates."""

    version: str
    candidate: str
    passed_gates: bool
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
        return f"version {self.version} ({self.candidate}) passed every training gate; challenger, awaiting validation and approval"


def train_and_register(night: Night) -> TrainOutcome:
    """Train, judge by the gates, register (challenger when every gate passed).

    The flow run's id keys the registration: a retried training reuses the version an
    earlier attempt registered instead of adding one. On a night without any model (not
    asked to retrain), a history that cannot train one yet is an outcome, not a failure:
    the rule baseline labels.
    """
    settings = night.settings()
    try:
        released = registration.train_and_register(
            settings, model_search.sized(settings.search), alias=CHALLENGER, run_key=night.run_id, actor=_actor(night)
        )
    except TrainingDataError as error:
        if night.retrain:
            raise
        return TrainOutcome("", "", False, [], not_trained=str(error))
    trained = released.trained
    return TrainOutcome(
        released.version, trained.selection.chosen.name, trained.passed_gates, released.summary_lines(), failures(trained.gates)
    )


@dataclass(frozen=True)
class ValidationOutcome:
    """--auto-approve: the validation of the version trained tonight, and whether it was approved."""

    version: str
    passed: bool
    approved: bool
    report: str
    failed_gates: list[str] = field(default_factory=list)

    @property
    def detail(self) -> str:
        if not self.passed:
            return (
                f"version {self.version} FAILED validation, not approved (report {self.report}): "
                + "; ".join(self.failed_gates)
            )
        where = ("approved (auto-approve): its canary starts the next night" if self.approved else
                 f"awaiting approval: business owner (`custlabel approve {self.version} --by NAME`)")
        return f"version {self.version} passed every validation gate (report {self.report}); {where}"


def validate_and_approve(night: Night, trained: TrainOutcome) -> ValidationOutcome:
    """Validate tonight's version in the test environment (`custlabel validate`); it then awaits the business
    owner's approval. With --auto-approve (demo, tests) it is approved when it passed every validation gate
    too. A retried run does not validate or approve a version again.
    """
    settings, actor = night.settings(), _actor(night)
    approver = f"auto-approve ({actor})"
    if lifecycle.read(settings).state_of(trained.version) == lifecycle.REGISTERED:
        validate_version.validate(
            settings, trained.version, as_of_date=night.as_of_date.isoformat(),
            actor=approver if night.auto_approve else actor, dbt_vars=night.dbt_vars,
        )
    passed = lifecycle.read(settings).state_of(trained.version) in (lifecycle.VALIDATED, lifecycle.APPROVED)
    if passed and night.auto_approve and lifecycle.read(settings).state_of(trained.version) == lifecycle.VALIDATED:
        approval.approve(settings, trained.version, approver, "auto-approve: every training and validation gate passed")
    tags = registry.get_version(settings, trained.version).tags
    failed = [f"{name}: {reason}" for name, reason in gate_verdicts.failed_in_tags(tags).items()]
    return ValidationOutcome(
        trained.version, passed, lifecycle.read(settings).state_of(trained.version) == lifecycle.APPROVED,
        tags.get("validation_report", ""), failed,
    )


@dataclass
class Summary:
    """The closing figures of a run: logged, returned by the flow, stored in pipeline_runs."""

    lines: list[str]
    data: dict[str, Any]

    def __str__(self) -> str:
        return "\n".join(self.lines)


def retraining_lines(found: TriggerReport | None, trained: TrainOutcome | None, validated: ValidationOutcome | None) -> list[str]:
    """What the summary says of the night's triggers, training and validation (the steps that ran)."""
    lines = []
    if found is not None:
        fired = "; ".join(f"{t.name} ({t.reason}; threshold {t.threshold})" for t in found.fired)
        lines.append(f"triggers fired: {fired} → {found.action}" if fired else "triggers fired: none")
    if trained is not None:
        lines.append(f"training: {trained.detail}")
    if validated is not None:
        lines.append(f"validation: {validated.detail}")
    return lines


def summarize(
    night: Night,
    record: pipeline_runs.RunRecord,
    headline: headline_figures.Headline | None,
    published: Published | None,
    trained: TrainOutcome | None,
    verdict: CanaryVerdict | None = None,
    found: TriggerReport | None = None,
    state: rollout.ReleaseState | None = None,
    validated: ValidationOutcome | None = None,
) -> Summary:
    """What the night did: steps and durations, the labels published, the release, the monitoring headline."""
    steps = [step for step in record.steps if step.attempt == record.attempt]
    labels = None if published is None else published.labels
    lines = [
        f"{FLOW_NAME} run {night.run_name} for {night.as_of_date}, target {night.target} ({night.schema})",
        "steps: " + ", ".join(f"{step.name} {step.seconds:.1f} s ({step.state})" for step in steps),
    ]
    if published is not None and published.fallback:
        lines.append(f"FALLBACK: {published.fallback}")
    if state is not None:
        lines.extend(state.lines())
    if verdict is not None:
        lines.append(f"canary: {verdict.detail}")
        lines.extend(f"canary: v{verdict.version} {line}" for line in canary_health.against_champion_lines(verdict.checks))
    if published is not None and published.canary_rolled_back:
        lines.append(f"canary: rolled back: {published.canary_rolled_back}")
    lines.extend(retraining_lines(found, trained, validated))
    if labels is not None:
        for part in labels.slices:
            lines.append(f"labels: {part.rows:,} customers by {model_label(part.model_name, part.model_version)}"
                         f" ({part.role}, {part.engine} engine)")
        lines.append(
            f"labels: {labels.customers:,} customers as of {labels.as_of_date}, bad rate {labels.bad_rate:.1%}; "
            f"select * from {labels.schema}.customer_labels"
        )
    if headline is not None:
        lines.extend(headline.lines())
    published_data = None if labels is None else {
        "customers": labels.customers, "bad_rate": labels.bad_rate, "slices": [asdict(part) for part in labels.slices]
    }
    data = {
        "labels": published_data,
        "training": None if trained is None else asdict(trained),
        "validation": None if validated is None else asdict(validated),
        "monitoring": None if headline is None else headline.as_dict(),
        "release": {
            "state": None if state is None else state.as_dict(),
            "fallback": None if published is None else published.fallback,
            "canary": None if verdict is None else asdict(verdict),
            "triggers": [] if found is None else [trigger.as_dict() for trigger in found.measured],
            "trigger_action": None if found is None else found.action,
        },
    }
    return Summary(lines, data)


def is_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry condition of the tasks: retry lost connections, lock waits and I/O trouble, never a failed dbt test, check or gate."""
    return retry.is_transient(state.result(raise_on_failure=False))
