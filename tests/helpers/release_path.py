"""Taking a registered version along the release path in tests that do not run `custlabel validate` itself.

A stand-in model is registered through its training gates. Its verdict is recorded as `custlabel
validate` records it, under the shipped acceptance.yml and against the target's current champion:
through the lifecycle alone, or by validate's own record with the version's score distribution,
which its canary nights are judged against (test_validate.py runs the real validation).
"""

from __future__ import annotations

from datetime import date

from custlabel.config import Settings
from custlabel.gate_verdicts import GATES_PASSED_TAG
from custlabel.release import approval, lifecycle, validate_version
from custlabel.release.score_distribution import ScoreDistribution
from custlabel.training import acceptance, model_families, registry, training_data
from custlabel.training.deployed_model import CHALLENGER
from custlabel.training.features import MODEL_FEATURES
from custlabel.warehouse import engine_schemas
from helpers.scoring import fit_model, synthetic_frame

ACTOR = "test (validation as custlabel validate records it)"


def register_stand_in(settings: Settings, missing_feature: str | None = None) -> str:
    """A stand-in model (a logistic regression of the training pipeline, fitted on synthetic outcomes) registered
    for the settings' target through its training gates.

    Args:
        missing_feature: a feature its metadata asks for that the warehouse lacks: it loads, but cannot label.
    """
    frame = synthetic_frame(2000, seed=7)
    model = fit_model(frame, "logreg", threshold=0.5)
    sample = frame[MODEL_FEATURES].head(50)
    if missing_feature:
        sample = sample.assign(**{missing_feature: 0.0})
    with registry.training_run(settings, "a stand-in canary", {"kind": "test"}):
        version = registry.register_model(settings, model.pipeline, sample, model.threshold, model_families.trusted_types())
    registry.tag_version(settings, version, {GATES_PASSED_TAG: "true"})
    lifecycle.register(settings, version, "test", "a stand-in canary", {}, None, [])
    return version


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


def newest_matured_night(settings: Settings) -> date:
    """The newest night of the target's training_set (its outcomes matured), read on the target's engine."""
    return training_data.read_summary(engine_schemas.of_target(settings, settings.schema))["as_of_date"].max()


def record_scored_validation(settings: Settings, version: str, night: date) -> None:
    """A passed validation recorded by `custlabel validate`'s own record, with the version's score distribution on
    the night's sampled training_set rows (`validate_version.evaluation_rows`, on the target's engine): the
    distribution its canary nights are judged against. The gates themselves are test_validate.py's."""
    rows = validate_version.evaluation_rows(settings, night)
    scores = registry.load_version(settings, version, CHALLENGER).scores(rows)
    result = validate_version.Validation(
        settings.model_name, version, night, [], settings.local_dir / "reports" / f"validation-v{version}.html",
        f"target={settings.target} schema={settings.schema} night={night}",
        against_champion=lifecycle.read(settings).champion, scores=ScoreDistribution.of(scores),
    )
    validate_version.record(settings, result, ACTOR, acceptance.load(settings=settings))
