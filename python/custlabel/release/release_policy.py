"""The ML engineer's release policy (release.yml): canary size, length and checks, and the retraining triggers."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from custlabel import reviewed_files
from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.reviewed_files import Share, StrictModel

FILE_NAME = "release.yml"


class ReleasePolicyError(CustlabelError):
    """The release policy file is missing or invalid."""


class AgainstChampion(StrictModel):
    max_bad_share_gap: Share
    max_score_psi: float = Field(gt=0)


class Canary(StrictModel):
    percent: float = Field(gt=0, lt=100)
    nights: int = Field(ge=1)
    max_validation_psi: float = Field(gt=0)
    estimated_margin: Share
    max_scoring_seconds: float = Field(gt=0)
    max_precision_drop: Share
    against_champion: AgainstChampion

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: object) -> object:
        moved = sorted(set(data) & set(AgainstChampion.model_fields)) if isinstance(data, dict) else []
        if moved:
            raise ValueError(
                f"canary.{moved[0]} moved to canary.against_champion.{moved[0]}: the gaps to the champion are gated"
                " between registered models only (see release.yml)"
            )
        return data


class DataTrigger(StrictModel):
    max_score_psi: float = Field(gt=0)
    drift_nights: int = Field(ge=1)
    window_nights: int = Field(ge=1)
    min_new_matured_labels: int = Field(ge=1)

    @model_validator(mode="after")
    def _k_of_n(self) -> DataTrigger:
        if self.drift_nights > self.window_nights:
            raise ValueError(f"drift_nights ({self.drift_nights}) cannot exceed window_nights ({self.window_nights})")
        return self


class PerformanceTrigger(StrictModel):
    min_customers_with_outcome: int = Field(ge=1)
    estimated_margin: Share


class AgeTrigger(StrictModel):
    max_days: int = Field(ge=1)


class Triggers(StrictModel):
    data: DataTrigger
    performance: PerformanceTrigger
    age: AgeTrigger
    # Nights without a training after a candidate closed (rejected, failed validation, rolled back).
    cool_off_nights: int = Field(default=3, ge=0, le=90)


class ReleasePolicy(StrictModel):
    canary: Canary
    triggers: Triggers


def parse(text: str, source: str = FILE_NAME) -> ReleasePolicy:
    """Validate the text of a release policy file."""
    return reviewed_files.parse(text, source, ReleasePolicy, ReleasePolicyError, "a mapping of sections")


def load(settings: Settings) -> ReleasePolicy:
    """The release policy of the settings' file (CUSTLABEL_RELEASE_FILE, else release.yml at the repository root)."""
    return read_file(settings.release_file)


def read_file(path: Path) -> ReleasePolicy:
    """Read and validate a release policy file."""
    if not path.is_file():
        raise ReleasePolicyError(f"no release policy at {path}: the ML engineer keeps it in {FILE_NAME}")
    return parse(path.read_text(), source=str(path))
