"""The lifecycle of a model version: a state machine whose one record is the release log.

registered → validated | validation_failed → approved | rejected → canary → champion
→ previous_champion | retired; a canary or a champion can be rolled_back. A version
that fails the training gates is rejected at once. Each move is one transition here:
it reads the state from the release log (`<schema>.model_releases`), refuses an
illegal move with the allowed way, appends the event and moves the registry's aliases.

The release log is the system of record (append-only, in the warehouse, read by BI);
the aliases champion, previous-champion, canary and challenger are its projection.
When they disagree the log wins: `reconcile` repairs the aliases and says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mlflow.exceptions import MlflowException

from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.release import release_log
from custlabel.training import acceptance, registry
from custlabel.training.deployed_model import CANARY as CANARY_ALIAS
from custlabel.training.deployed_model import CHALLENGER
from custlabel.training.deployed_model import CHAMPION as CHAMPION_ALIAS
from custlabel.training.deployed_model import PREVIOUS_CHAMPION as PREVIOUS_ALIAS

log = logging.getLogger(__name__)

REGISTERED = "registered"
VALIDATED = "validated"
VALIDATION_FAILED = "validation_failed"
APPROVED = "approved"
REJECTED = "rejected"
CANARY = "canary"
CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous_champion"
RETIRED = "retired"
ROLLED_BACK = "rolled_back"
# Closed states: the version goes no further; the triggers train its successor.
CLOSED = (VALIDATION_FAILED, REJECTED, ROLLED_BACK)
# Versions on their way to champion: while one is, a trigger does not train another.
ON_ITS_WAY = (REGISTERED, VALIDATED, APPROVED, CANARY)
# Events that move no version: recorded without touching the registry.
NO_MOVE = ("canary_night", "fallback", "triggered")
VALIDATABLE = (REGISTERED, VALIDATED, VALIDATION_FAILED, APPROVED)
MANAGED_ALIASES = (CHAMPION_ALIAS, PREVIOUS_ALIAS, CANARY_ALIAS, CHALLENGER)
RETRAIN = "train a new version (the next trigger does; a data scientist can run `custlabel nightly --retrain`)"
# What a version in each state waits for, and who moves it.
NEXT_STEP = {
    None: "it has no release record: only versions registered by `custlabel train` or the nightly run can be released",
    REGISTERED: "validate it first: the nightly run validates what it trained, a data scientist runs `custlabel validate {v}`",
    VALIDATED: "a business owner approves it (`custlabel approve {v} --by NAME`) or rejects it "
               "(`custlabel reject {v} --by NAME --note WHY`)",
    VALIDATION_FAILED: f"it failed validation and is closed: {RETRAIN}; a data scientist may validate it again "
                       "(`custlabel validate {v}`) when the failure was the environment's",
    APPROVED: "the next nightly run starts its canary; an ML engineer may make it champion at once "
              "(`custlabel promote {v} --by NAME`)",
    REJECTED: f"it was rejected and is closed: {RETRAIN}",
    CANARY: "the nightly run promotes it after its healthy canary nights and rolls it back at a failed check",
    CHAMPION: "it labels prod; an ML engineer goes back with `custlabel rollback --by NAME --reason WHY`",
    PREVIOUS_CHAMPION: "a former champion: an ML engineer makes it champion again with "
                       "`custlabel rollback --to {v} --by NAME --reason WHY`",
    RETIRED: "a former champion: an ML engineer makes it champion again with "
             "`custlabel rollback --to {v} --by NAME --reason WHY`",
    ROLLED_BACK: f"it was rolled back and is closed: {RETRAIN}",
}


class LifecycleError(CustlabelError):
    """A move the lifecycle does not allow from the version's state (the message names the allowed way)."""


def _number(version: str | None) -> int:
    return int(version) if version and version.isdigit() else 0


@dataclass(frozen=True)
class VersionState:
    """Where one version stands, and the events that decide its next moves."""

    version: str
    state: str
    was_champion: bool = False
    validation: release_log.RecordedEvent | None = None


@dataclass(frozen=True)
class Lifecycle:
    """Every version's state, folded from the release log; who labels prod follows from it."""

    model_name: str
    versions: dict[str, VersionState] = field(default_factory=dict)
    champion: str | None = None
    previous_champion: str | None = None
    canary: str | None = None
    last_trained: date | None = None

    def state_of(self, version: str | None) -> str | None:
        """The version's state, None when the log never heard of it."""
        found = self.versions.get(str(version))
        return None if found is None else found.state

    def newer_than_champion(self, *states: str) -> list[str]:
        """Versions newer than the champion in these states, oldest first."""
        return sorted((v.version for v in self.versions.values()
                       if v.state in states and _number(v.version) > _number(self.champion)), key=_number)

    def on_its_way(self) -> str | None:
        """The newest version on its way to champion (canary first), if any."""
        return self.canary or (self.newer_than_champion(REGISTERED, VALIDATED, APPROVED) or [None])[-1]

    def former_champions(self) -> list[str]:
        """Versions that were champion once and are not now: the versions a rollback may go back to."""
        return sorted((v.version for v in self.versions.values() if v.was_champion and v.version != self.champion),
                      key=_number)

    def validated_against_champion(self, version: str) -> bool:
        """Whether the version's last validation compared it with the current champion (the rule when none)."""
        validation = self.versions[version].validation
        return validation is not None and validation.details.get("against_champion", "unrecorded") == self.champion

    def aliases(self) -> dict[str, str]:
        """The registry aliases this state projects: champion, previous-champion, canary, challenger."""
        waiting = self.newer_than_champion(REGISTERED, VALIDATED, APPROVED)
        wanted = {CHAMPION_ALIAS: self.champion, PREVIOUS_ALIAS: self.previous_champion, CANARY_ALIAS: self.canary,
                  CHALLENGER: waiting[-1] if waiting else None}
        return {alias: version for alias, version in wanted.items() if version}

    def waiting_for(self) -> list[str]:
        """What the product waits for, and which role can unblock it."""
        lines = []
        if self.canary:
            lines.append(f"canary v{self.canary} on its healthy nights: the nightly run promotes it or rolls it back "
                         "(ML engineer watches; `custlabel rollback` after a promotion)")
        for version in self.newer_than_champion(APPROVED):
            if self.validated_against_champion(version):
                lines.append(f"v{version} approved: its canary starts at the next nightly run (nightly run)")
            else:
                lines.append(f"v{version} approved, but validated against another champion: a data scientist "
                             f"validates it again (`custlabel validate {version}`), or a business owner rejects it")
        for version in self.newer_than_champion(VALIDATED):
            lines.append(f"v{version} awaits a decision: business owner (`custlabel approve {version} --by NAME`"
                         f" or `custlabel reject {version} --by NAME --note WHY`)")
        for version in self.newer_than_champion(REGISTERED):
            lines.append(f"v{version} awaits validation: the nightly run, or a data scientist "
                         f"(`custlabel validate {version}`)")
        if lines:
            return lines
        closed = [v for v in self.versions.values() if v.state in CLOSED and _number(v.version) > _number(self.champion)]
        last = f"; the last candidate v{closed[-1].version} was {closed[-1].state}" if closed else ""
        if self.champion:
            return [f"nothing: champion v{self.champion} labels; a trigger trains the next candidate{last} "
                    "(data scientist: `custlabel nightly --retrain`)"]
        return [f"a first model: the rule baseline labels; a trigger trains a candidate{last} "
                "(data scientist: `custlabel nightly --retrain`)"]


def fold(model_name: str, events: list[release_log.RecordedEvent]) -> Lifecycle:
    """Replay the release events of a model, oldest first, into every version's state."""
    states: dict[str, str] = {}
    validations: dict[str, release_log.RecordedEvent] = {}
    champions: set[str] = set()
    champion = previous = canary = None
    last_trained = None
    for event in events:
        version = event.model_version
        if event.event == "trained" and version not in states:
            states[version] = REGISTERED
            last_trained = event.as_of_date or event.occurred_at.date()
        elif event.event in ("rejected", "approved"):
            states[version] = event.event
        elif event.event in ("validated", "validation_failed"):
            states[version], validations[version] = event.event, event
        elif event.event == "canary_started":
            states[version], canary = CANARY, version
        elif event.event == "promoted":
            if champion and champion != version:
                if previous:
                    states[previous] = RETIRED
                previous, states[champion] = champion, PREVIOUS_CHAMPION
            champion, states[version], canary = version, CHAMPION, None if canary == version else canary
            champions.add(version)
        elif event.event == "rolled_back" and event.details.get("stage") == "champion":
            to = str(event.details["to"])
            if version:
                states[version] = ROLLED_BACK
            previous = None if previous == to else previous
            champion, states[to] = to, CHAMPION
            champions.add(to)
        elif event.event == "rolled_back":
            states[version] = ROLLED_BACK
            canary = None if canary == version else canary
    versions = {v: VersionState(v, s, v in champions, validations.get(v)) for v, s in states.items() if v is not None}
    return Lifecycle(model_name, versions, champion, previous, canary, last_trained)


def read(settings: Settings) -> Lifecycle:
    """The target's lifecycle, from its release log."""
    return fold(settings.model_name, release_log.history(settings, model_name=settings.model_name))


def project(settings: Settings, lifecycle: Lifecycle | None = None) -> list[str]:
    """Point the registry's managed aliases where the log says; returns each alias moved (or that could not be)."""
    wanted = (lifecycle or read(settings)).aliases()
    current = registry.alias_versions(settings)
    moves = []
    for alias in MANAGED_ALIASES:
        have, want = current.get(alias), wanted.get(alias)
        if have == want:
            continue
        try:
            if want is None:
                registry.delete_alias(settings, alias)
            else:
                registry.set_alias(settings, alias, want)
            moves.append(f"{alias}: v{have or '-'} -> v{want or '-'}")
        except (CustlabelError, MlflowException) as error:
            moves.append(f"{alias}: cannot point at v{want} ({type(error).__name__}: {error})")
    return moves


def reconcile(settings: Settings) -> list[str]:
    """Repair aliases that disagree with the release log, with a warning per repair (the log wins)."""
    try:
        moves = project(settings)
    except (CustlabelError, MlflowException) as error:
        moves = [f"the registry cannot be read ({type(error).__name__}: {error})"]
    for move in moves:
        log.warning("the registry's aliases disagreed with the release log of %s; the log wins: %s",
                    settings.target, move)
    return moves


def _way(lifecycle: Lifecycle, version: str) -> str:
    return NEXT_STEP[lifecycle.state_of(version)].format(v=version)


def _require(lifecycle: Lifecycle, version: str, allowed: tuple[str, ...], move: str) -> None:
    state = lifecycle.state_of(version)
    if state not in allowed:
        raise LifecycleError(
            f"{lifecycle.model_name} v{version} is {state or 'not in the release log'}; {move} needs it "
            f"{' or '.join(allowed)}: {_way(lifecycle, version)}"
        )


def _record(settings: Settings, event: str, version: str | None, actor: str, reason: str = "",
            details: dict[str, Any] | None = None, night: date | None = None, model_name: str | None = None) -> None:
    release_log.record(settings, release_log.ReleaseEvent(
        event, model_name or settings.model_name, version, actor, reason,
        {"target": settings.target, **(details or {})}, night))
    if event not in NO_MOVE:
        project(settings)


def _named(who: str, flag: str = "--by") -> str:
    if not who.strip():
        raise LifecycleError(f"{flag} must name who decides (recorded in the release log)")
    return who.strip()


def refuse_training_alias(alias: str | None) -> None:
    """A training registers a candidate: it takes no alias but challenger."""
    if alias and alias != CHALLENGER:
        raise LifecycleError(
            f"a training cannot set the alias {alias!r}: it registers a candidate (challenger). A version becomes "
            f"{alias} only through the release path: `custlabel validate VERSION`, `custlabel approve VERSION --by NAME`,"
            " then its canary in the nightly run (or `custlabel promote VERSION --by NAME`)"
        )


def register(settings: Settings, version: str, actor: str, reason: str, details: dict[str, Any], night: date | None,
             gate_failures: list[str]) -> None:
    """registered (a `trained` event), or rejected at once when a training gate failed; once per version."""
    if read(settings).state_of(version) is not None:
        return
    _record(settings, "trained", version, actor, reason, details, night)
    if gate_failures:
        _record(settings, "rejected", version, "release gates", "; ".join(gate_failures), {}, night)


def check_validatable(settings: Settings, version: str) -> None:
    """Refuse, before any work, to validate a version the lifecycle has closed or moved past validation."""
    _require(read(settings), version, VALIDATABLE, "a validation")


def record_validation(settings: Settings, version: str, passed: bool, actor: str, reason: str,
                      details: dict[str, Any], night: date | None, criteria: acceptance.AcceptanceCriteria,
                      against_champion: str | None) -> None:
    """registered | validated | validation_failed | approved → validated or validation_failed, with the criteria and
    the champion it was judged by (the nightly run validates only what it registered; an operator may re-validate)."""
    _require(read(settings), version, VALIDATABLE, "a validation")
    judged = {"acceptance": {"path": criteria.source, "sha256": criteria.sha256}, "against_champion": against_champion}
    _record(settings, VALIDATED if passed else VALIDATION_FAILED, version, actor, reason, {**details, **judged}, night)


def _check_validation(settings: Settings, lifecycle: Lifecycle, version: str) -> None:
    """The version's validation compared it with prod's current champion under the target's acceptance.yml."""
    validation = lifecycle.versions[version].validation
    if validation is None or validation.event != VALIDATED:
        raise LifecycleError(f"{lifecycle.model_name} v{version} has no passed validation: "
                             f"run `custlabel validate {version}`")
    judged = validation.details.get("acceptance") or {}
    shipped = acceptance.load(settings=settings)
    if judged.get("sha256") != shipped.sha256:
        raise LifecycleError(
            f"{lifecycle.model_name} v{version} was validated under {judged.get('path') or 'unrecorded criteria'} "
            f"(sha256 {str(judged.get('sha256'))[:12]}), not the target's {shipped.source} (sha256 {shipped.sha256[:12]}): "
            f"validate it again with the shipped criteria: `custlabel validate {version}`"
        )
    against = validation.details.get("against_champion", "unrecorded")
    if against != lifecycle.champion:
        raise LifecycleError(
            f"{lifecycle.model_name} v{version} was validated against "
            f"{'v' + against if against else 'the rule baseline'}, but the champion of {settings.target} is "
            f"{'v' + lifecycle.champion if lifecycle.champion else 'the rule baseline'}: "
            f"validate it again: `custlabel validate {version}`"
        )


def approve(settings: Settings, version: str, by: str, note: str = "") -> None:
    """validated → approved, with who (and when: the event's time) in the release log."""
    by = _named(by)
    lifecycle = read(settings)
    _require(lifecycle, version, (VALIDATED,), "an approval")
    _check_validation(settings, lifecycle, version)
    _record(settings, APPROVED, version, by, note)


def reject(settings: Settings, version: str, by: str, note: str) -> None:
    """registered | validated | approved → rejected (closed), with who and why."""
    by = _named(by)
    if not note.strip():
        raise LifecycleError("a rejection needs --note: say why, for the release log")
    _require(read(settings), version, (REGISTERED, VALIDATED, APPROVED), "a rejection")
    _record(settings, REJECTED, version, by, note.strip())


def start_canary(settings: Settings, version: str, actor: str, night: date | None) -> None:
    """approved → canary (its validation checked against the current champion), when no canary runs."""
    lifecycle = read(settings)
    if lifecycle.canary:
        raise LifecycleError(f"canary v{lifecycle.canary} is running: one canary at a time ({_way(lifecycle, lifecycle.canary)})")
    _require(lifecycle, version, (APPROVED,), "a canary")
    _check_validation(settings, lifecycle, version)
    champion = lifecycle.champion
    _record(settings, "canary_started", version, actor,
            f"approved; labels a canary slice against champion {'v' + champion if champion else 'rule baseline'}",
            {"champion": champion}, night)


def record_canary_night(settings: Settings, version: str, actor: str, reason: str, details: dict[str, Any],
                        night: date) -> None:
    """A canary night's checks (the state stays canary)."""
    _require(read(settings), version, (CANARY,), "a canary night")
    _record(settings, "canary_night", version, actor, reason, details, night)


def promote(settings: Settings, version: str, actor: str, reason: str, night: date | None) -> str | None:
    """canary | approved → champion; the champion becomes previous_champion, the previous one retired. Returns the old champion."""
    lifecycle = read(settings)
    _require(lifecycle, version, (CANARY, APPROVED), "a promotion")
    if lifecycle.state_of(version) == APPROVED:
        _check_validation(settings, lifecycle, version)
    _record(settings, "promoted", version, actor, reason, {"previous_champion": lifecycle.champion}, night)
    return lifecycle.champion


def roll_back_canary(settings: Settings, version: str, actor: str, reason: str, night: date | None) -> None:
    """canary → rolled_back (closed)."""
    _require(read(settings), version, (CANARY,), "a canary rollback")
    _record(settings, ROLLED_BACK, version, actor, reason, {"stage": "canary"}, night)


def rollback_target(settings: Settings, to: str | None) -> Lifecycle:
    """The lifecycle, checked that `to` (default the previous champion) is a former champion to go back to."""
    lifecycle = read(settings)
    formers = ", ".join(f"v{v}" for v in lifecycle.former_champions()) or "none"
    target = to or lifecycle.previous_champion
    if target is None:
        raise LifecycleError(f"no previous champion to roll back to: name a former champion with --to VERSION "
                             f"(former champions: {formers})")
    if target == lifecycle.champion:
        raise LifecycleError(f"v{target} is already the champion")
    found = lifecycle.versions.get(str(target))
    if found is None or not found.was_champion:
        raise LifecycleError(
            f"v{target} was never champion ({lifecycle.state_of(target) or 'not in the release log'}): a rollback goes "
            f"back to a former champion (former champions: {formers}); a new version becomes champion through "
            f"`custlabel validate`, `custlabel approve` and its canary"
        )
    return lifecycle


def rollback(settings: Settings, to: str | None, by: str, reason: str, night: date | None, when: str) -> str:
    """champion → rolled_back, and a former champion (default the previous one) → champion, in one step. Returns it."""
    by = _named(by)
    if not reason.strip():
        raise LifecycleError("a rollback needs --reason TEXT (recorded in the release log)")
    lifecycle = rollback_target(settings, to)
    target = str(to or lifecycle.previous_champion)
    _record(settings, ROLLED_BACK, lifecycle.champion, by, reason,
            {"stage": "champion", "to": target, "when": when}, night)
    return target


def record_fallback(settings: Settings, model_name: str, version: str, actor: str, reason: str,
                    details: dict[str, Any], night: date) -> bool:
    """A `fallback` event, once per night and reason: a retried run does not repeat it (returns whether recorded now)."""
    if any(e.event == "fallback" and e.as_of_date == night and e.reason == reason for e in release_log.history(settings)):
        return False
    _record(settings, "fallback", version, actor, reason, details, night, model_name=model_name)
    return True


def record_trigger(settings: Settings, actor: str, reason: str, details: dict[str, Any], night: date) -> None:
    """A `triggered` event of the model (no version moves)."""
    _record(settings, "triggered", None, actor, reason, details, night)
