"""The ML engineer's release policy (release.yml): canary size, length and checks, and the retraining triggers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from custlabel.config import Settings, get_settings
from custlabel.errors import CustlabelError

FILE_NAME = "release.yml"
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class ReleasePolicyError(CustlabelError):
    """The release policy file is missing or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Canary(_Strict):
    percent: float = Field(gt=0, lt=100)
    nights: int = Field(ge=1)
    max_bad_share_gap: Share
    max_score_psi: float = Field(gt=0)
    max_scoring_seconds: float = Field(gt=0)
    max_precision_drop: Share


class DataTrigger(_Strict):
    max_score_psi: float = Field(gt=0)
    drift_nights: int = Field(ge=1)
    window_nights: int = Field(ge=1)
    min_new_matured_labels: int = Field(ge=1)

    @model_validator(mode="after")
    def _k_of_n(self) -> DataTrigger:
        if self.drift_nights > self.window_nights:
            raise ValueError(f"drift_nights ({self.drift_nights}) cannot exceed window_nights ({self.window_nights})")
        return self


class PerformanceTrigger(_Strict):
    min_customers_with_outcome: int = Field(ge=1)
    estimated_margin: Share


class AgeTrigger(_Strict):
    max_days: int = Field(ge=1)


class Triggers(_Strict):
    data: DataTrigger
    performance: PerformanceTrigger
    age: AgeTrigger


class ReleasePolicy(_Strict):
    canary: Canary
    triggers: Triggers


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = "unknown key (typo?)" if problem["type"] == "extra_forbidden" else problem["msg"]
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def parse(text: str, source: str = FILE_NAME) -> ReleasePolicy:
    """Validate the text of a release policy file."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ReleasePolicyError(f"{source} is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ReleasePolicyError(f"{source} must be a mapping of sections, got {type(raw).__name__}")
    try:
        return ReleasePolicy.model_validate(raw)
    except ValidationError as error:
        raise ReleasePolicyError(f"{source} is invalid:\n{_describe(error)}") from error


def load(path: Path | None = None, settings: Settings | None = None) -> ReleasePolicy:
    """Read and validate the release policy (default: release.yml at the repository root)."""
    path = path or (settings or get_settings()).project_dir / FILE_NAME
    if not path.is_file():
        raise ReleasePolicyError(f"no release policy at {path}: the ML engineer keeps it in {FILE_NAME}")
    return parse(path.read_text(), source=str(path))
