"""The reviewed YAML files (acceptance.yml, alerts.yml, release.yml): read into a pydantic model, every problem named in one message."""

from __future__ import annotations

from typing import Annotated, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from custlabel.errors import CustlabelError

Model = TypeVar("Model", bound=BaseModel)
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class StrictModel(BaseModel):
    """A section of a reviewed file: unknown keys are refused (typos), values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def describe(error: ValidationError) -> str:
    """One line per problem: where in the file, and what is wrong."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = "unknown key (typo?)" if problem["type"] == "extra_forbidden" else problem["msg"]
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def parse(text: str, source: str, model: type[Model], error: type[CustlabelError], shape: str) -> Model:
    """Validate a file's text against its model; `shape` says what the top level must be (for the message)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as problem:
        raise error(f"{source} is not valid YAML: {problem}") from problem
    if not isinstance(raw, dict):
        raise error(f"{source} must be {shape}, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as problem:
        raise error(f"{source} is invalid:\n{describe(problem)}") from problem
