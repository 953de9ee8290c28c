"""Manual validation and promotion: who approved or rejected a version, and when an approved one becomes champion.

A version may be approved or rejected only once, only in the target it was
trained for, and only after it passed the training gates and the validation
(`custlabel validate` sets the tag `validation_status`). Approval makes a
version eligible; `promote` makes an approved version champion. Every decision
is recorded on the version (tags) and in the target's release log.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mlflow.entities.model_registry import ModelVersion

from custlabel import registry, releases
from custlabel.config import Settings
from custlabel.deployed import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION
from custlabel.errors import CustlabelError
from custlabel.gates import failed_in_tags

VALIDATION_STATUS_TAG = "validation_status"
GATES_PASSED_TAG = "gates_passed"
APPROVAL_STATUS_TAG = "approval_status"
APPROVED_BY_TAG = "approved_by"
APPROVED_AT_TAG = "approved_at"
APPROVAL_NOTE_TAG = "approval_note"
APPROVED, REJECTED = "approved", "rejected"


class ApprovalError(CustlabelError):
    """A version cannot be approved, rejected or promoted (the message says why)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _decidable(settings: Settings, version: str) -> ModelVersion:
    """The version, checked to be of this target, undecided, through the training gates and validated."""
    record = registry.get_version(settings, version)
    name, tags = settings.model_name, record.tags
    trained_for = tags.get(registry.TARGET_TAG)
    if trained_for != settings.target:
        raise ApprovalError(
            f"{name} version {version} was trained for target {trained_for or '(not recorded)'}, not "
            f"{settings.target}: decide it with --target {trained_for}"
        )
    if tags.get(APPROVAL_STATUS_TAG):
        raise ApprovalError(
            f"{name} version {version} was already {tags[APPROVAL_STATUS_TAG]} by {tags.get(APPROVED_BY_TAG)} "
            f"at {tags.get(APPROVED_AT_TAG)}: a decision is final; train and validate a new version"
        )
    if tags.get(GATES_PASSED_TAG) != "true":
        failed = [f"gate_{name}" for name in failed_in_tags(tags)]
        raise ApprovalError(
            f"{name} version {version} did not pass the training gates ({', '.join(failed) or 'not judged'}): "
            "it can be neither approved nor rejected"
        )
    status = tags.get(VALIDATION_STATUS_TAG)
    if status != "passed":
        raise ApprovalError(
            f"{name} version {version} has not passed validation (validation_status: {status or 'not validated'}): "
            f"run `custlabel validate {version}` first"
        )
    return record


def _decide(settings: Settings, version: str, status: str, by: str, note: str) -> None:
    registry.tag_version(
        settings,
        version,
        {APPROVAL_STATUS_TAG: status, APPROVED_BY_TAG: by, APPROVED_AT_TAG: _now(), APPROVAL_NOTE_TAG: note},
    )
    releases.record(
        settings, releases.ReleaseEvent(status, settings.model_name, version, by, note, {"target": settings.target})
    )


def _named(by: str) -> str:
    if not by.strip():
        raise ApprovalError("--by must name who decides")
    return by.strip()


def approve(settings: Settings, version: str, by: str, note: str = "") -> str:
    """Approve a validated version: it becomes eligible for promotion (it does not become champion here)."""
    by = _named(by)
    _decidable(settings, version)
    _decide(settings, version, APPROVED, by, note)
    return f"{settings.model_name} version {version} approved by {by} (target {settings.target}); promote it to make it champion"


def reject(settings: Settings, version: str, by: str, note: str) -> str:
    """Reject a validated version, with the reason; it stops being the challenger."""
    by = _named(by)
    if not note.strip():
        raise ApprovalError("a rejection needs --note: say why, for the release log")
    _decidable(settings, version)
    aliases = registry.alias_versions(settings)
    if aliases.get(CHAMPION) == version:
        raise ApprovalError(f"{settings.model_name} version {version} is the champion: promote another version first")
    _decide(settings, version, REJECTED, by, note.strip())
    if aliases.get(CHALLENGER) == version:
        registry.delete_alias(CHALLENGER, settings)
    return f"{settings.model_name} version {version} rejected by {by} (target {settings.target}): {note.strip()}"


def promote(settings: Settings, version: str, by: str) -> str:
    """Make an approved version the target's champion at once (no canary); the old one stays as previous-champion."""
    by = _named(by)
    record = registry.get_version(settings, version)
    status = record.tags.get(APPROVAL_STATUS_TAG)
    if status != APPROVED:
        raise ApprovalError(
            f"{settings.model_name} version {version} is not approved (approval_status: {status or 'undecided'}): "
            f"`custlabel approve {version} --by NAME` first"
        )
    previous = registry.alias_versions(settings).get(CHAMPION)
    registry.set_alias(CHAMPION, version, settings)
    if previous and previous != version:
        registry.set_alias(PREVIOUS_CHAMPION, previous, settings)
    releases.record(
        settings,
        releases.ReleaseEvent(
            "promoted", settings.model_name, version, by, f"champion was {previous or 'none (the rule baseline)'}",
            {"target": settings.target, "previous_champion": previous},
        ),
    )
    return f"{settings.model_name} version {version} is the champion of target {settings.target} (was {previous or 'none'})"

