"""The business-owned acceptance criteria (acceptance.yml), validated on load."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from custlabel.config import Settings, get_settings
from custlabel.errors import CustlabelError
from custlabel.features import SENSITIVE_ATTRIBUTES

FILE_NAME = "acceptance.yml"
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class AcceptanceError(CustlabelError):
    """The acceptance file is missing or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Performance(_Strict):
    min_precision: Share
    min_recall: Share
    threshold_policy: Literal["max_recall_at_precision"] = "max_recall_at_precision"
    validation_margin: float = Field(default=0.0, ge=0.0, le=0.2)

    @property
    def validation_precision(self) -> float:
        """The precision the threshold aims at on validation."""
        return min(1.0, self.min_precision + self.validation_margin)

    @model_validator(mode="after")
    def _not_trivial(self) -> Performance:
        if self.min_precision == 0 and self.min_recall == 0:
            raise ValueError("min_precision and min_recall cannot both be 0: every model would pass")
        return self


class RelativeToChampion(_Strict):
    max_precision_drop: Share
    max_recall_drop: Share


class Computational(_Strict):
    min_rows_per_second: float = Field(gt=0)
    max_peak_memory_mb: float = Field(gt=0)


class Fairness(_Strict):
    attributes: list[str]
    min_group_size: int = Field(ge=1)
    max_precision_gap: Share
    min_selection_rate_ratio: Share

    @model_validator(mode="after")
    def _known_attributes(self) -> Fairness:
        unknown = sorted(set(self.attributes) - set(SENSITIVE_ATTRIBUTES))
        if unknown:
            raise ValueError(f"unknown attributes {unknown}: expected some of {SENSITIVE_ATTRIBUTES}")
        return self


class AcceptanceCriteria(_Strict):
    owner: str = Field(min_length=1)
    performance: Performance
    relative_to_champion: RelativeToChampion
    computational: Computational
    fairness: Fairness
    source: str = Field(default="", exclude=True)
    sha256: str = Field(default="", exclude=True)


def default_path(settings: Settings | None = None) -> Path:
    """Where the acceptance file lives: the repository root."""
    return (settings or get_settings()).project_dir / FILE_NAME


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = "unknown key (typo?)" if problem["type"] == "extra_forbidden" else problem["msg"]
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def parse(text: str, source: str = FILE_NAME) -> AcceptanceCriteria:
    """Validate the text of an acceptance file."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise AcceptanceError(f"{source} is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise AcceptanceError(f"{source} must be a mapping of sections, got {type(raw).__name__}")
    try:
        criteria = AcceptanceCriteria.model_validate(raw)
    except ValidationError as error:
        raise AcceptanceError(f"{source} is invalid:\n{_describe(error)}") from error
    digest = hashlib.sha256(text.encode()).hexdigest()
    return criteria.model_copy(update={"source": source, "sha256": digest})


def load(path: Path | None = None, settings: Settings | None = None) -> AcceptanceCriteria:
    """Read and validate the acceptance criteria (default: acceptance.yml at the repository root)."""
    path = path or default_path(settings)
    if not path.is_file():
        raise AcceptanceError(
            f"no acceptance criteria at {path}: the business owner keeps them in {FILE_NAME}"
        )
    return parse(path.read_text(), source=str(path))
