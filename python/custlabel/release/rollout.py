"""The release path after approval: canary (step 3a), promotion (3b), rollback, and the loud fallback.

Every move is a transition of the release lifecycle (`custlabel.release.lifecycle`):
a row in the release log, which decides who labels, and the aliases it projects;
tags on the version repeat it for the registry's readers. Who labels prod tonight
is read from the log: the champion, an approved canary on its slice, or the
fallback (previous champion, then the rule baseline), said loudly.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from psycopg import sql

from custlabel import gate_verdicts
from custlabel.config import Settings, schema_for
from custlabel.errors import CustlabelError
from custlabel.gate_verdicts import GateResult
from custlabel.release import lifecycle, release_log
from custlabel.release.release_policy import ReleasePolicy
from custlabel.scoring import score, writeback
from custlabel.training import registry, rule_baseline
from custlabel.training.deployed_model import (
    CANARY,
    CHAMPION,
    PREVIOUS_CHAMPION,
    DeployedModel,
)
from custlabel.warehouse import db

log = logging.getLogger(__name__)

# Set here: running | promoted | rolled_back.
CANARY_STATUS = "canary_status"


class RollbackError(CustlabelError):
    """A rollback that cannot be done (no version to go back to, an unknown version)."""


@dataclass(frozen=True)
class ReleaseState:
    """Where the model's versions stand tonight: champion, canary and its healthy nights, versions awaiting a decision."""

    model_name: str
    champion: str | None = None
    previous_champion: str | None = None
    canary: str | None = None
    canary_nights: int = 0
    canary_nights_needed: int = 0
    awaiting_validation: list[str] = field(default_factory=list)
    awaiting_approval: list[str] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)
    registered: int = 0
    on_its_way: str | None = None
    waiting_for: list[str] = field(default_factory=list)
    aliases_repaired: list[str] = field(default_factory=list)

    @property
    def has_model(self) -> bool:
        """Whether any version of the model is registered (no bootstrap needed)."""
        return self.registered > 0

    def lines(self) -> list[str]:
        """The release state for the run summary."""
        champion = f"v{self.champion}" if self.champion else "none (the rule baseline labels)"
        previous = f", previous champion v{self.previous_champion}" if self.previous_champion else ""
        canary = (f"v{self.canary}, {self.canary_nights} of {self.canary_nights_needed} healthy nights"
                  if self.canary else "none")
        validation = ", ".join(f"v{v}" for v in self.awaiting_validation) or "none"
        waiting = ", ".join(f"v{v}" for v in self.awaiting_approval) or "none"
        approved = ", ".join(f"v{v}" for v in self.approved) or "none"
        return [
            f"release: champion {champion}{previous}; canary {canary}",
            f"release: awaiting validation {validation}; awaiting approval {waiting}; approved, waiting for a canary {approved}",
            *(f"release: waiting for {line}" for line in self.waiting_for),
            *(f"release: REPAIRED alias from the release log: {move}" for move in self.aliases_repaired),
        ]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def canary_nights(settings: Settings, version: str) -> int:
    """Healthy canary nights of a version since its canary started."""
    events = release_log.history(settings, model_version=version, model_name=settings.model_name)
    starts = [event.event_id for event in events if event.event == "canary_started"]
    since = max(starts, default=0)
    healthy = {
        event.as_of_date for event in events
        if event.event == "canary_night" and event.event_id > since and event.details.get("healthy")
    }
    return len(healthy)


def read_state(settings: Settings, policy: ReleasePolicy, repaired: list[str] | None = None) -> ReleaseState:
    """Tonight's release state, from the release log (the lifecycle)."""
    now = lifecycle.read(settings)
    return ReleaseState(
        model_name=settings.model_name,
        champion=now.champion,
        previous_champion=now.previous_champion,
        canary=now.canary,
        canary_nights=canary_nights(settings, now.canary) if now.canary else 0,
        canary_nights_needed=policy.canary.nights,
        awaiting_validation=now.newer_than_champion(lifecycle.REGISTERED),
        awaiting_approval=now.newer_than_champion(lifecycle.VALIDATED),
        approved=now.newer_than_champion(lifecycle.APPROVED),
        registered=len(now.versions),
        on_its_way=now.on_its_way(),
        waiting_for=now.waiting_for(),
        aliases_repaired=list(repaired or []),
    )


def start_canary(settings: Settings, state: ReleaseState, night: date, actor: str) -> ReleaseState:
    """Put the newest approved version on the canary slice, when no canary is running."""
    if state.canary or not state.approved:
        return state
    version = state.approved[-1]
    try:
        lifecycle.start_canary(settings, version, actor, night)
    except lifecycle.LifecycleError as error:  # a stale validation: the state says who moves it
        log.warning("no canary tonight: %s", error)
        return state
    registry.tag_version(settings, version, {CANARY_STATUS: "running", "canary_started_on": str(night)})
    return ReleaseState(**{**asdict(state), "canary": version, "canary_nights": 0, "on_its_way": version,
                           "approved": [v for v in state.approved if v != version]})


def record_canary_night(settings: Settings, version: str, night: date, results: list[GateResult], actor: str) -> bool:
    """Record a canary night's checks (a canary_night event and gate tags); returns whether it was healthy."""
    healthy = gate_verdicts.all_passed(results)
    registry.tag_version(settings, version, dict(result.tag() for result in results))
    lifecycle.record_canary_night(settings, version, actor, "healthy" if healthy else "; ".join(gate_verdicts.failures(results)),
                                  {"healthy": healthy, "checks": [result.as_dict() for result in results]}, night)
    return healthy


def promote(settings: Settings, version: str, night: date, actor: str, reason: str) -> str | None:
    """Make a version champion; the old champion stays known as previous champion. Returns the old champion."""
    previous = lifecycle.promote(settings, version, actor, reason, night)
    registry.tag_version(settings, version, {CANARY_STATUS: "promoted", "promoted_on": str(night)})
    return previous


def roll_back_canary(settings: Settings, version: str, night: date, actor: str, reason: str) -> None:
    """Take a canary off its slice: a rolled_back event with the reason (the alias follows), the version tagged."""
    lifecycle.roll_back_canary(settings, version, actor, reason, night)
    registry.tag_version(settings, version, {CANARY_STATUS: "rolled_back", "rolled_back_reason": reason[:4000]})


@dataclass(frozen=True)
class Lineup:
    """Who labels tonight: the champion (or what stands in for it), the canary, and why a fallback was needed."""

    champion: DeployedModel
    canary: DeployedModel | None = None
    fallback: str | None = None
    # Why the canary's files were refused (they differ from its registration): it is rolled back tonight.
    canary_refused: str | None = None


class LineupModels:
    """A score.ModelSource over a lineup: the champion and canary already chosen and loaded."""

    def __init__(self, lineup: Lineup) -> None:
        self.lineup = lineup

    def model(self, alias: str) -> DeployedModel | None:
        return {CHAMPION: self.lineup.champion, CANARY: self.lineup.canary}.get(alias)

    def rule(self) -> DeployedModel:
        return self.lineup.champion if self.lineup.champion.is_rule else rule_baseline.RULE


def lineup(settings: Settings, schema: str) -> Lineup:
    """Tonight's models, as the release log names them. A champion that cannot be loaded is replaced by the
    previous champion, else the rule baseline, and the lineup says why (the fallback); no canary runs then."""
    rule = score.RegisteredModels(settings).rule()
    now = lifecycle.read(settings)
    if now.champion is None:
        return _with_canary(settings, now, Lineup(rule))
    try:
        champion = registry.load_version(settings, now.champion, CHAMPION)
    except registry.NoModelRegisteredError:
        return fall_back(settings, now, f"champion v{now.champion} of the release log is not in the registry"
                         " (MLflow store missing, or the version deleted)", rule)
    except Exception as error:  # noqa: BLE001 - a load error of any kind is a fallback, said loudly
        return fall_back(settings, now, f"champion v{now.champion} cannot be loaded ({type(error).__name__}: {error})",
                         rule)
    return _with_canary(settings, now, Lineup(champion))


def _with_canary(settings: Settings, now: lifecycle.Lifecycle, chosen: Lineup) -> Lineup:
    if now.canary is None:
        return chosen
    try:
        return Lineup(chosen.champion, registry.load_version(settings, now.canary, CANARY))
    except registry.ArtifactTamperedError as error:
        log.error("the canary v%s is refused: %s", now.canary, error)
        return Lineup(chosen.champion, None, chosen.fallback, f"canary refused: {error}")
    except Exception as error:  # noqa: BLE001 - a canary that cannot load is rolled back by its checks
        log.warning("the canary v%s cannot be loaded: %s", now.canary, error)
        return Lineup(chosen.champion, None, None)


def fall_back(settings: Settings, now: lifecycle.Lifecycle, problem: str, rule: DeployedModel) -> Lineup:
    """The previous champion, else the rule baseline, with the problem said (no canary runs on a fallback)."""
    previous = now.previous_champion
    if previous:
        try:
            model = registry.load_version(settings, previous, PREVIOUS_CHAMPION)
            return Lineup(model, None, f"{problem}; labelled by the previous champion v{previous}")
        except Exception as error:  # noqa: BLE001
            problem += f"; previous champion v{previous} cannot be loaded either ({type(error).__name__})"
    return Lineup(rule, None, f"{problem}; labelled by the rule baseline ({rule.label})")


def after_scoring_failure(settings: Settings, failed: Lineup, problem: str) -> Lineup:
    """A champion that loaded but failed to label: the previous champion (unless it was the one failing), else the rule."""
    rule = score.RegisteredModels(settings).rule()
    if failed.fallback is None:
        return fall_back(settings, lifecycle.read(settings), problem, rule)
    return Lineup(rule, None, f"{failed.fallback}; {problem}; labelled by the rule baseline ({rule.label})")


def record_fallback(settings: Settings, chosen: Lineup, night: date, actor: str) -> None:
    """The fallback as a release event, once per night (the run record and the flow state say it too)."""
    lifecycle.record_fallback(settings, chosen.champion.name, chosen.champion.version, actor, chosen.fallback or "",
                              {"labelled_by": chosen.champion.label}, night)


@dataclass(frozen=True)
class Rollback:
    """What `custlabel rollback` did."""

    from_version: str | None
    to_version: str
    republished: score.ScoreSummary | None

    def lines(self) -> list[str]:
        lines = [f"champion v{self.from_version or '-'} -> v{self.to_version}"]
        if self.republished is None:
            lines.append(f"v{self.to_version} labels from the next nightly run")
        else:
            lines.append(f"republished {self.republished.customers:,} labels of {self.republished.as_of_date}"
                         f" by v{self.to_version}")
        return lines


def rollback(
    settings: Settings,
    target: str | None,
    to: str | None,
    by: str,
    reason: str,
    next_night: bool,
) -> Rollback:
    """`custlabel rollback`: make the previous champion (or `to`, a former champion) champion, recording who and why.

    Unless `next_night`, tonight's labels are republished by it first (one transaction),
    and the champion changes only once they are published.
    """
    settings = replace(settings, target=target or settings.target)
    schema = schema_for(settings.target)
    if not by.strip() or not reason.strip():
        raise RollbackError("a rollback needs --by NAME and --reason TEXT")
    if to is not None and to not in registry.version_tags(settings):
        raise RollbackError(f"{settings.model_name} has no version {to}")
    now = lifecycle.rollback_target(settings, to)
    target, current = str(to or now.previous_champion), now.champion
    if target not in registry.version_tags(settings):  # deleted since it was champion: it could not label
        raise RollbackError(f"{settings.model_name} v{target} is no longer in the registry: roll back to another former "
                            f"champion with --to VERSION, or let the rule baseline label until a new version is approved")
    republished = None if next_night else _republish(settings, schema, registry.load_version(settings, target, CHAMPION))
    night = republished.as_of_date if republished is not None else None
    lifecycle.rollback(settings, target, by, reason, night, "next night" if next_night else "at once")
    if current:
        registry.tag_version(settings, current, {"rolled_back_by": by, "rolled_back_reason": reason[:4000],
                                                 "rolled_back_at": datetime.now(UTC).isoformat(timespec="seconds")})
    return Rollback(current, target, republished)


def _republish(settings: Settings, schema: str, model: DeployedModel) -> score.ScoreSummary:
    """Label the published night again with `model`, swapped in one transaction (the rate check waived: asked for)."""
    with db.connect(settings) as conn:
        if not db.relation_exists(conn, schema, writeback.LABELS):
            raise RollbackError(f"{schema}.{writeback.LABELS} does not exist: nothing to republish (use --next-night)")
        night = conn.execute(sql.SQL("select max(as_of_date) from {}").format(
            sql.Identifier(schema, writeback.LABELS))).fetchone()[0]
    request = score.ScoreRequest(schema, expected_as_of=night, force=True)
    return score.score(settings, request, models=LineupModels(Lineup(model)))
