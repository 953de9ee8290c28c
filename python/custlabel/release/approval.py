"""The business owner's decision on a validated version, and the ML engineer's promotion without a canary.

Each decision is a transition of the release lifecycle (`custlabel.release.lifecycle`):
recorded with who and when in the release log, which alone decides; the version's
tags repeat it for the registry's readers.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mlflow.entities.model_registry import ModelVersion

from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.gate_verdicts import GATES_PASSED_TAG, failed_in_tags
from custlabel.release import lifecycle
from custlabel.training import registry

VALIDATION_STATUS_TAG = "validation_status"
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
    """The version, checked to be of this target and through the training gates (the lifecycle checks the rest)."""
    record = registry.get_version(settings, version)
    name, tags = settings.model_name, record.tags
    trained_for = tags.get(registry.TARGET_TAG)
    if trained_for != settings.target:
        raise ApprovalError(
            f"{name} version {version} was trained for target {trained_for or '(not recorded)'}, not "
            f"{settings.target}: decide it with --target {trained_for}"
        )
    if tags.get(GATES_PASSED_TAG) != "true":
        failed = [f"gate_{name}" for name in failed_in_tags(tags)]
        raise ApprovalError(
            f"{name} version {version} did not pass the training gates ({', '.join(failed) or 'not judged'}): "
            "it can be neither approved nor rejected"
        )
    return record


def _tag(settings: Settings, version: str, status: str, by: str, note: str) -> None:
    registry.tag_version(
        settings,
        version,
        {APPROVAL_STATUS_TAG: status, APPROVED_BY_TAG: by, APPROVED_AT_TAG: _now(), APPROVAL_NOTE_TAG: note},
    )


def approve(settings: Settings, version: str, by: str, note: str = "") -> str:
    """Approve a validated version: its canary starts at the next nightly run (it does not become champion here)."""
    _decidable(settings, version)
    lifecycle.approve(settings, version, by, note)
    _tag(settings, version, APPROVED, by.strip(), note)
    return (f"{settings.model_name} version {version} approved by {by.strip()} (target {settings.target}); "
            "its canary starts at the next nightly run (or `custlabel promote` makes it champion at once)")


def reject(settings: Settings, version: str, by: str, note: str) -> str:
    """Reject a version on its way, with the reason; it is closed and stops being the challenger."""
    _decidable(settings, version)
    lifecycle.reject(settings, version, by, note)
    _tag(settings, version, REJECTED, by.strip(), note.strip())
    return f"{settings.model_name} version {version} rejected by {by.strip()} (target {settings.target}): {note.strip()}"


def promote(settings: Settings, version: str, by: str) -> str:
    """Make an approved version the target's champion at once (no canary); the old one becomes previous champion."""
    previous = lifecycle.promote(settings, version, by, "promoted at once (no canary)", None)
    return f"{settings.model_name} version {version} is the champion of target {settings.target} (was {previous or 'none'})"
