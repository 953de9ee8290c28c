"""Gate verdicts: what each release gate decided about a version, in one shape for tags, logs and reports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

# The registry tag of a version that passed every training gate ("true" / "false").
GATES_PASSED_TAG = "gates_passed"


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict on a version: passed or not, why in one sentence, and the figures it judged."""

    name: str
    passed: bool
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)
    gated: bool = True

    @property
    def verdict(self) -> str:
        if not self.gated:
            return "reported"
        return "passed" if self.passed else "failed"

    def tag(self) -> tuple[str, str]:
        """The registry tag of the verdict: `gate_<name>` → `passed: reason` (MLflow tag values are text)."""
        return f"gate_{self.name}", f"{self.verdict}: {self.reason}"[:5000]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def all_passed(results: Iterable[GateResult]) -> bool:
    """Whether every gated result passed (reported-only results never block)."""
    return all(result.passed for result in results if result.gated)


def failed_in_tags(tags: dict[str, str]) -> dict[str, str]:
    """The failed verdicts among a version's registry tags (GateResult.tag), name → reason, by name."""
    return {
        key.removeprefix("gate_"): value.removeprefix("failed: ")
        for key, value in sorted(tags.items()) if key.startswith("gate_") and value.startswith("failed")
    }


def failures(results: Iterable[GateResult]) -> list[str]:
    """The reasons of the gated results that failed, `name: reason` each."""
    return [f"{result.name}: {result.reason}" for result in results if result.gated and not result.passed]
