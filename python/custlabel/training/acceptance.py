"""The business-owned acceptance criteria (acceptance.yml), validated on load."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from custlabel import reviewed_files
from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.reviewed_files import Share, StrictModel
from custlabel.training.features import SENSITIVE_ATTRIBUTES

FILE_NAME = "acceptance.yml"


class AcceptanceError(CustlabelError):
    """The acceptance file is missing or invalid."""


class Performance(StrictModel):
    min_precision: Share
    min_recall: Share
    min_lift: float = Field(default=1.0, ge=1.0)
    max_bad_share: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    threshold_policy: Literal["max_recall_at_precision", "max_precision_at_recall", "fixed_share"] = (
        "max_recall_at_precision"
    )
    fixed_share: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    validation_margin: float = Field(default=0.0, ge=0.0, le=0.2)

    @property
    def validation_precision(self) -> float:
        """The precision the threshold aims at on validation."""
        return min(1.0, self.min_precision + self.validation_margin)

    @property
    def validation_bad_share(self) -> float:
        """The largest share labelled bad the threshold may give on validation."""
        return max(0.0, self.max_bad_share - self.validation_margin)

    @model_validator(mode="after")
    def _not_trivial(self) -> Performance:
        if self.min_precision == 0 and self.min_recall == 0:
            raise ValueError("min_precision and min_recall cannot both be 0: every model would pass")
        if self.min_lift <= 1.0 and self.max_bad_share >= 1.0:
            raise ValueError(
                "a 'bad' label must carry information: set min_lift above 1 or max_bad_share below 1"
                " (else labelling everyone bad passes whenever the base rate is above min_precision)"
            )
        return self

    @model_validator(mode="after")
    def _share_fits_the_policy(self) -> Performance:
        if self.threshold_policy == "fixed_share":
            if self.fixed_share is None:
                raise ValueError("threshold_policy fixed_share needs fixed_share: the share of customers to label bad")
            if self.fixed_share > self.validation_bad_share:
                raise ValueError(
                    f"fixed_share {self.fixed_share} is above max_bad_share {self.max_bad_share} minus the "
                    f"validation_margin {self.validation_margin}"
                )
        elif self.fixed_share is not None:
            raise ValueError(f"fixed_share is read only with threshold_policy fixed_share, not {self.threshold_policy}")
        return self


class RelativeToChampion(StrictModel):
    max_precision_drop: Share
    max_recall_drop: Share


class Computational(StrictModel):
    min_rows_per_cpu_second: float = Field(gt=0)
    max_peak_memory_mb: float = Field(gt=0)


class Fairness(StrictModel):
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


class AcceptanceCriteria(StrictModel):
    owner: str = Field(min_length=1)
    performance: Performance
    relative_to_champion: RelativeToChampion
    computational: Computational
    fairness: Fairness
    source: str = Field(default="", exclude=True)
    sha256: str = Field(default="", exclude=True)


def default_path(settings: Settings) -> Path:
    """Where the acceptance file lives: CUSTLABEL_ACCEPTANCE_FILE, else the repository root."""
    return settings.acceptance_file


def parse(text: str, source: str = FILE_NAME) -> AcceptanceCriteria:
    """Validate the text of an acceptance file."""
    criteria = reviewed_files.parse(text, source, AcceptanceCriteria, AcceptanceError, "a mapping of sections")
    digest = hashlib.sha256(text.encode()).hexdigest()
    return criteria.model_copy(update={"source": source, "sha256": digest})


def load(settings: Settings) -> AcceptanceCriteria:
    """The acceptance criteria of the settings' file (CUSTLABEL_ACCEPTANCE_FILE, else the repository's acceptance.yml)."""
    return read_file(default_path(settings))


def read_file(path: Path) -> AcceptanceCriteria:
    """Read and validate an acceptance file."""
    if not path.is_file():
        raise AcceptanceError(
            f"no acceptance criteria at {path}: the business owner keeps them in {FILE_NAME}"
        )
    return parse(path.read_text(), source=str(path))
