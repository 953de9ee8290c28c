"""Taking a registered version along the release path in tests that do not run `custlabel validate` itself.

The verdict is recorded through the lifecycle, as `custlabel validate` records it: under the
shipped acceptance.yml and against the target's current champion (test_validate.py runs the
real validation).
"""

from __future__ import annotations

from custlabel.config import Settings
from custlabel.release import approval, lifecycle
from custlabel.training import acceptance

ACTOR = "test (validation as custlabel validate records it)"


def record_validation(settings: Settings, version: str, passed: bool = True) -> None:
    """A validation verdict of the version against the current champion, under the shipped criteria."""
    lifecycle.record_validation(
        settings, version, passed, ACTOR, "every gate passed" if passed else "gate_precision failed", {}, None,
        acceptance.load(settings=settings), lifecycle.read(settings).champion,
    )


def approve_and_promote(settings: Settings, version: str, by: str = "alice") -> None:
    """Validated, approved and made champion at once, each through the lifecycle."""
    record_validation(settings, version)
    approval.approve(settings, version, by, "validation report reviewed")
    approval.promote(settings, version, by)
