"""The release path after approval: canary (step 3a), promotion (3b), rollback, and the loud fallback.

Every move is an alias in the registry, tags on the version, and a row in the
release log (`releases`): canary_started, canary_night, promoted, rolled_back, fallback.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from psycopg import sql

from custlabel import approval, baseline, db, gates, registry, releases, score, writeback
from custlabel.config import Settings, get_settings, schema_for
from custlabel.deployed import CANARY, CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, DeployedModel
from custlabel.errors import CustlabelError
from custlabel.gates import GateResult
from custlabel.release_policy import ReleasePolicy

log = logging.getLogger(__name__)

# Set here: running | promoted | rolled_back.
CANARY_STATUS = "canary_status"


class RollbackError(CustlabelError):
    """A rollback that cannot be done (no version to go back to, an unknown version)."""


def _number(version: str | None) -> int:
    return int(version) if version and version.isdigit() else 0


@dataclass(frozen=True)
class ReleaseState:
    """Where the model's versions stand tonight: champion, canary and its healthy nights, versions awaiting a decision."""

    model_name: str
    champion: str | None = None
    previous_champion: str | None = None
    canary: str | None = None
    canary_nights: int = 0
    canary_nights_needed: int = 0
    awaiting_approval: list[str] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)
    registered: int = 0

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
        waiting = ", ".join(f"v{v}" for v in self.awaiting_approval) or "none"
        approved = ", ".join(f"v{v}" for v in self.approved) or "none"
        return [
            f"release: champion {champion}{previous}; canary {canary}",
            f"release: awaiting approval {waiting}; approved, waiting for a canary {approved}",
        ]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def canary_nights(settings: Settings, version: str) -> int:
    """Healthy canary nights of a version since its canary started."""
    events = releases.history(settings, model_version=version, model_name=settings.model_name)
    starts = [event.event_id for event in events if event.event == "canary_started"]
    since = max(starts, default=0)
    healthy = {
        event.as_of_date for event in events
        if event.event == "canary_night" and event.event_id > since and event.details.get("healthy")
    }
    return len(healthy)


def approved_for_canary(tags: dict[str, str]) -> bool:
    """Approved (and validated, where validation ran), and not yet through a canary."""
    return (
        tags.get(approval.APPROVAL_STATUS_TAG) == approval.APPROVED
        and tags.get(approval.VALIDATION_STATUS_TAG, "passed") == "passed"
        and CANARY_STATUS not in tags
    )


def _awaiting_approval(tags: dict[str, str]) -> bool:
    """Through the training gates, undecided, and never on a canary."""
    return (
        tags.get(approval.GATES_PASSED_TAG) == "true"
        and approval.APPROVAL_STATUS_TAG not in tags
        and CANARY_STATUS not in tags
    )


def read_state(settings: Settings, policy: ReleasePolicy) -> ReleaseState:
    """The registry's aliases and tags and the release log, as tonight's release state."""
    aliases = registry.alias_versions(settings)
    tags = registry.version_tags(settings)
    champion, canary_version = aliases.get(CHAMPION), aliases.get(CANARY)
    newer = sorted((v for v in tags if _number(v) > _number(champion) and v != canary_version), key=_number)
    return ReleaseState(
        model_name=settings.model_name,
        champion=champion,
        previous_champion=aliases.get(PREVIOUS_CHAMPION),
        canary=canary_version,
        canary_nights=canary_nights(settings, canary_version) if canary_version else 0,
        canary_nights_needed=policy.canary.nights,
        awaiting_approval=[v for v in newer if _awaiting_approval(tags[v])],
        approved=[v for v in newer if approved_for_canary(tags[v])],
        registered=len(tags),
    )


def _event(settings: Settings, event: str, version: str | None, actor: str, reason: str,
           night: date | None, details: dict[str, Any] | None = None, model_name: str | None = None) -> None:
    releases.record(settings, releases.ReleaseEvent(
        event, model_name or settings.model_name, version, actor, reason, details or {}, night))


def start_canary(settings: Settings, state: ReleaseState, night: date, actor: str) -> ReleaseState:
    """Put the newest approved version on the canary slice, when no canary is running."""
    if state.canary or not state.approved:
        return state
    version = state.approved[-1]
    registry.set_alias(CANARY, version, settings)
    registry.tag_version(settings, version, {CANARY_STATUS: "running", "canary_started_on": str(night)})
    _event(settings, "canary_started", version, actor, f"approved; labels a canary slice against champion "
           f"{'v' + state.champion if state.champion else 'rule baseline'}", night,
           {"champion": state.champion})
    return ReleaseState(**{**asdict(state), "canary": version, "canary_nights": 0,
                           "approved": [v for v in state.approved if v != version]})


def record_canary_night(settings: Settings, version: str, night: date, results: list[GateResult], actor: str) -> bool:
    """Record a canary night's checks (a canary_night event and gate tags); returns whether it was healthy."""
    healthy = gates.all_passed(results)
    failed = gates.failures(results)
    registry.tag_version(settings, version, dict(result.tag() for result in results))
    _event(settings, "canary_night", version, actor, "healthy" if healthy else "; ".join(failed), night,
           {"healthy": healthy, "checks": [result.as_dict() for result in results]})
    return healthy


def promote(settings: Settings, version: str, night: date, actor: str, reason: str) -> str | None:
    """Make a version champion; the old champion stays known as previous-champion. Returns the old champion."""
    aliases = registry.alias_versions(settings)
    previous = aliases.get(CHAMPION)
    registry.set_alias(CHAMPION, version, settings)
    if previous and previous != version:
        registry.set_alias(PREVIOUS_CHAMPION, previous, settings)
    for alias in (CANARY, CHALLENGER):
        if aliases.get(alias) == version:
            registry.delete_alias(alias, settings)
    registry.tag_version(settings, version, {CANARY_STATUS: "promoted", "promoted_on": str(night)})
    _event(settings, "promoted", version, actor, reason, night, {"previous_champion": previous})
    return previous


def roll_back_canary(settings: Settings, version: str, night: date, actor: str, reason: str) -> None:
    """Take a canary off its slice: alias removed, version tagged, a rolled_back event with the reason."""
    aliases = registry.alias_versions(settings)
    for alias in (CANARY, CHALLENGER):
        if aliases.get(alias) == version:
            registry.delete_alias(alias, settings)
    registry.tag_version(settings, version, {CANARY_STATUS: "rolled_back", "rolled_back_reason": reason[:4000]})
    _event(settings, "rolled_back", version, actor, reason, night, {"stage": "canary"})


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
        return self.lineup.champion if self.lineup.champion.is_rule else baseline.RULE


def _published_registered_model(settings: Settings, schema: str) -> str | None:
    """The registered model version that labelled the most customers of the last published night, if any."""
    with db.connect(settings) as conn:
        if not db.relation_exists(conn, schema, writeback.LABELS):
            return None
        row = conn.execute(sql.SQL(
            "select model_version from {} where model_name = %s group by model_version order by count(*) desc limit 1"
        ).format(sql.Identifier(schema, writeback.LABELS)), [settings.model_name]).fetchone()
    return None if row is None else str(row[0])


def expected_champion(settings: Settings, schema: str) -> str | None:
    """The version that should be champion, as Postgres remembers it (release log, published labels)."""
    moves = [e for e in releases.history(settings, model_name=settings.model_name)
             if e.event == "promoted" or (e.event == "rolled_back" and e.details.get("stage") == "champion")]
    if moves:
        last = moves[-1]
        return str(last.details.get("to") or last.model_version)
    return _published_registered_model(settings, schema)


def lineup(settings: Settings, schema: str) -> Lineup:
    """Tonight's models. A champion that cannot be loaded is replaced by the previous champion, else the rule
    baseline, and the lineup says why (the fallback); no canary runs then."""
    rule = score.RegisteredModels(settings).rule()
    try:
        aliases = registry.alias_versions(settings)
    except Exception as error:  # noqa: BLE001 - any registry fault means the champion cannot be had
        return _fall_back(settings, schema, f"the registry cannot be read ({type(error).__name__}: {error})", rule, {})
    version = aliases.get(CHAMPION)
    if version is None:
        expected = expected_champion(settings, schema)
        if expected is None:
            return _with_canary(settings, aliases, Lineup(rule))
        return _fall_back(settings, schema, f"champion v{expected} is expected but the registry has no champion"
                          " (MLflow store missing, or the alias or version deleted)", rule, aliases)
    try:
        champion = registry.load_alias(CHAMPION, settings)
    except Exception as error:  # noqa: BLE001 - a load error of any kind is a fallback, said loudly
        return _fall_back(settings, schema, f"champion v{version} cannot be loaded ({type(error).__name__}: {error})",
                          rule, aliases)
    if champion is None:
        return _fall_back(settings, schema, f"champion v{version} cannot be loaded", rule, aliases)
    return _with_canary(settings, aliases, Lineup(champion))


def _with_canary(settings: Settings, aliases: dict[str, str], chosen: Lineup) -> Lineup:
    if CANARY not in aliases:
        return chosen
    try:
        return Lineup(chosen.champion, registry.load_alias(CANARY, settings))
    except registry.ArtifactTamperedError as error:
        log.error("the canary v%s is refused: %s", aliases[CANARY], error)
        return Lineup(chosen.champion, None, chosen.fallback, f"canary refused: {error}")
    except Exception as error:  # noqa: BLE001 - a canary that cannot load is rolled back by its checks
        log.warning("the canary v%s cannot be loaded: %s", aliases[CANARY], error)
        return Lineup(chosen.champion, None, None)


def _fall_back(settings: Settings, schema: str, problem: str, rule: DeployedModel, aliases: dict[str, str]) -> Lineup:
    previous = aliases.get(PREVIOUS_CHAMPION)
    if previous:
        try:
            model = registry.load_alias(PREVIOUS_CHAMPION, settings)
            if model is not None:
                return Lineup(model, None, f"{problem}; labelled by the previous champion v{previous}")
        except Exception as error:  # noqa: BLE001
            problem += f"; previous champion v{previous} cannot be loaded either ({type(error).__name__})"
    return Lineup(rule, None, f"{problem}; labelled by the rule baseline ({rule.name} v{rule.version})")


def record_fallback(settings: Settings, chosen: Lineup, night: date, actor: str) -> None:
    """The fallback as a release event (the run record and the flow state say it too)."""
    _event(settings, "fallback", chosen.champion.version, actor, chosen.fallback or "", night,
           {"labelled_by": f"{chosen.champion.name} v{chosen.champion.version}"}, model_name=chosen.champion.name)


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


def rollback(target: str | None, to: str | None, by: str, reason: str, next_night: bool,
             settings: Settings | None = None) -> Rollback:
    """`custlabel rollback`: make the previous champion (or `to`) champion, recording who and why.

    Unless `next_night`, tonight's labels are republished by it first (one transaction),
    and the aliases move only once they are published.
    """
    settings = settings or get_settings()
    settings = replace(settings, target=target or settings.target)
    schema = schema_for(settings.target)
    if not by.strip() or not reason.strip():
        raise RollbackError("a rollback needs --by NAME and --reason TEXT")
    aliases = registry.alias_versions(settings)
    current = aliases.get(CHAMPION)
    target = to or aliases.get(PREVIOUS_CHAMPION)
    if target is None:
        raise RollbackError("no previous champion to roll back to: name a version with --to VERSION")
    if target not in registry.version_tags(settings):
        raise RollbackError(f"{settings.model_name} has no version {target}")
    if target == current:
        raise RollbackError(f"v{target} is already the champion")
    republished = None if next_night else _republish(settings, schema, registry.load_version(settings, target, CHAMPION))
    registry.set_alias(CHAMPION, target, settings)
    if aliases.get(PREVIOUS_CHAMPION) == target:
        registry.delete_alias(PREVIOUS_CHAMPION, settings)
    if current:
        registry.tag_version(settings, current, {"rolled_back_by": by, "rolled_back_reason": reason[:4000],
                                                 "rolled_back_at": datetime.now(UTC).isoformat(timespec="seconds")})
    night = republished.as_of_date if republished is not None else None
    _event(settings, "rolled_back", current, by, reason, night,
           {"stage": "champion", "to": target, "when": "next night" if next_night else "at once"})
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
