"""`custlabel validate VERSION`: deploy a registered version to the test environment and run every release gate.

Steps, all in the test target (schema analytics_test; a Spark version's: spark_test, analytics_spark_test),
none moving an alias:
1. dbt builds the test target as of tonight (or --as-of).
2. Smoke test (custlabel.release.smoke): load by registry URI in a fresh process, score tonight's
   sample. A version that fails it goes no further.
3. The champion of the version's own target (prod's, for a prod version; without one,
   the rule baseline) and then the version score the version's test night into analytics_test, each in a process of its own that measures
   speed and memory (custlabel.release.computational_validation). The night is the version's test night,
   not tonight: its outcomes have matured, so the labels written can be judged.
4. ML validation (`_ml_validation`), computational, fairness and explainability gates on
   the test night's customers (a deterministic sample of at most EVAL_ROWS).
5. The verdicts are a transition of the release lifecycle: `validated` or
   `validation_failed` in the release log, with the acceptance file (path and sha256)
   and the champion it was judged against; the tags (`validation_status`, `validated_at`,
   `validated_on`, one `gate_<name>` each) repeat them on the version, with the version's
   score distribution on the test night (`validation_score_distribution`, which its
   canary nights are judged against), and one HTML report is written to
   .local/reports/validation-v<VERSION>.html and logged on the version.

On Spark (a version trained by a night with --target spark) the test environment is the
spark_test target (database analytics_spark_test): dbt builds it, the smoke test runs in a fresh
process on tonight's rows read from Spark (smoke.check_on_spark), the champion and the version
label the test night's rows read from Spark each in a measured child process
(computational_validation.score_in_child_on_spark; nothing is written), then score the test
night's sampled rows in this process for the ML, fairness and explainability gates.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from custlabel import gate_verdicts
from custlabel.config import TEST_TARGETS, Settings, is_spark
from custlabel.errors import CustlabelError
from custlabel.gate_verdicts import GateResult
from custlabel.release import (
    computational_validation,
    explainability,
    fairness,
    lifecycle,
    performance_gates,
    score_distribution,
    smoke,
    validation_report,
)
from custlabel.scoring import writeback
from custlabel.training import (
    acceptance,
    evaluate,
    registry,
    rule_baseline,
    training_data,
)
from custlabel.training.deployed_model import CHALLENGER, CHAMPION, DeployedModel
from custlabel.training.features import (
    KEY_COLUMNS,
    LABEL_COLUMN,
    MODEL_FEATURES,
    SENSITIVE_ATTRIBUTES,
)
from custlabel.warehouse import dbt_runner, engine_schemas
from custlabel.warehouse.engine_schemas import Schema

TEST_TARGET = "test"
ACTOR = "custlabel validate"
EVAL_ROWS = 200_000
CURRENT_FEATURES = "customer_features_current"
STATUS_TAG = "validation_status"


class ValidationError(CustlabelError):
    """A version cannot be validated (unknown, or without the record of its training)."""


@dataclass
class Validation:
    """What `custlabel validate` decided about a version, and where it wrote it down."""

    model_name: str
    version: str
    night: date
    gates: list[GateResult]
    report: Path
    validated_on: str
    seconds: dict[str, float] = field(default_factory=dict)
    against_champion: str | None = None
    judged_by: str = ""
    scores: score_distribution.ScoreDistribution | None = None  # the version's, on the test night

    @property
    def passed(self) -> bool:
        return gate_verdicts.all_passed(self.gates)

    def summary_lines(self) -> list[str]:
        """What the command prints."""
        lines = [f"{self.model_name} version {self.version}: validation {'passed' if self.passed else 'FAILED'} ({self.validated_on})"]
        against = f"champion v{self.against_champion}" if self.against_champion else "the rule baseline (no champion)"
        lines.append(f"judged by {self.judged_by}, against {against}")
        lines += [f"  {gate.verdict:>8}  {gate.name}: {gate.reason}" for gate in self.gates]
        lines.append(f"report: {self.report}")
        return lines


def _sample_keys(source: Schema) -> str:
    """A deterministic sample of the night's (`:night`) training_set customers (at most EVAL_ROWS)."""
    return (f"select customer_id from {source.name(training_data.TABLE)} where as_of_date = :night"
            f" order by md5(customer_id) limit {EVAL_ROWS}")


def evaluation_rows(settings: Settings, night: date) -> pd.DataFrame:
    """The sampled customers of the night: features, outcome, the rule's score, and tonight's sensitive attributes.

    The attributes are tonight's (customer_features_current), the night's where tonight has none: a
    night before the first snapshot only assumes them (reconstructed history), and who a customer
    is does not leak into a fairness report (attributes are never features). Read on the target's engine.
    """
    source = engine_schemas.of_target(settings, settings.schema)
    columns = ", ".join(f"t.{c}" for c in [*KEY_COLUMNS, *MODEL_FEATURES, LABEL_COLUMN])
    attributes = ", ".join(f"coalesce(nullif(c.{name}, 'unknown'), t.{name}) as {name}" for name in SENSITIVE_ATTRIBUTES)
    query = (
        f"select {columns}, {attributes}, r.score as rule_score from {source.name(training_data.TABLE)} as t"
        f" join ({_sample_keys(source)}) as s on s.customer_id = t.customer_id"
        f" join {source.name(rule_baseline.RELATION)} as r on r.customer_id = t.customer_id and r.as_of_date = t.as_of_date"
        f" left join {source.name(CURRENT_FEATURES)} as c on c.customer_id = t.customer_id"
        " where t.as_of_date = :night order by t.customer_id"
    )
    frame = training_data.normalize(source.frame(query, {"night": night}))
    if frame.empty:
        raise ValidationError(f"{settings.schema}.{training_data.TABLE} has no matured rows on {night}: nothing to validate on")
    evaluate.check_labels(frame[LABEL_COLUMN].to_numpy(), f"test night {night} in {settings.schema}")
    return frame


def written_scores(settings: Settings, night: date) -> pd.DataFrame:
    """The scores the test environment's last scoring wrote for the sampled customers of the night."""
    source = engine_schemas.of_target(settings, settings.schema)
    query = (
        f"select h.customer_id, h.score from {source.name(writeback.HISTORY)} as h"
        f" join ({_sample_keys(source)}) as s on s.customer_id = h.customer_id where h.as_of_date = :night"
    )
    return source.frame(query, {"night": night})


def _plain(value: Any) -> Any:
    """JSON-safe figures: numpy scalars as numbers, NaN as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def test_environment_of(settings: Settings) -> str:
    """The test environment of the settings' target: `test`, or its own (spark_test for spark)."""
    return TEST_TARGETS.get(settings.target, TEST_TARGET)


def _test_night(settings: Settings, version: str) -> date:
    tags = registry.get_version(settings, version).tags
    if "test_date" not in tags:
        raise ValidationError(
            f"{settings.model_name} version {version} has no test_date tag: only versions registered by `custlabel train` can be validated"
        )
    return date.fromisoformat(tags["test_date"])


def record(settings: Settings, result: Validation, actor: str, criteria: acceptance.AcceptanceCriteria) -> None:
    """The verdicts in the release lifecycle, with the criteria and champion that judged them, and on the version's tags."""
    status = "passed" if result.passed else "failed"
    tags = {
        STATUS_TAG: status,
        "validated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "validated_on": result.validated_on,
        "validation_report": str(result.report),
        **dict(gate.tag() for gate in result.gates),
        **({score_distribution.TAG: result.scores.to_json()} if result.scores else {}),
    }
    failed = gate_verdicts.failures(result.gates)
    lifecycle.record_validation(
        settings, result.version, result.passed, actor, "every gate passed" if result.passed else "; ".join(failed),
        _plain({"validated_on": result.validated_on, "report": str(result.report), "seconds": result.seconds,
                "gates": [gate.as_dict() for gate in result.gates]}),
        result.night, criteria, result.against_champion,
    )
    registry.tag_version(settings, result.version, tags)


def _log_report(settings: Settings, result: Validation, page: str) -> None:
    result.report.parent.mkdir(parents=True, exist_ok=True)
    result.report.write_text(page)
    run_tags = {"kind": "validation", "model_version": result.version, STATUS_TAG: "passed" if result.passed else "failed"}
    with registry.training_run(settings, f"validate v{result.version}", run_tags), tempfile.TemporaryDirectory() as folder:
        (Path(folder) / result.report.name).write_text(page)
        registry.log_version_files(settings, result.version, Path(folder), "validation")


def validate(
    settings: Settings,
    version: str,
    criteria: acceptance.AcceptanceCriteria | None = None,
    as_of_date: str | None = None,
    build_warehouse: bool = True,
    actor: str = ACTOR,
    dbt_vars: dict | None = None,
) -> Validation:
    """Deploy a version to the test environment, run every gate, record the verdicts (see the module's steps).

    Args:
        dbt_vars: vars of the test target's dbt build, as the nightly run's (e.g. a shorter outcome window).
    """
    criteria = criteria or acceptance.load(settings=settings)
    test = replace(settings, target=test_environment_of(settings))
    night = _test_night(settings, version)
    lifecycle.check_validatable(settings, str(version))
    champion = lifecycle.read(settings).champion
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        seconds[step] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()

    if build_warehouse:
        dbt_runner.run(settings, ["build"], target=test.target, as_of_date=as_of_date, extra_vars=dbt_vars)
        lap("dbt build")
    validated_on = f"target={test.target} schema={test.schema} night={night} built_as_of={as_of_date or 'the last complete night'}"
    report = settings.local_dir / "reports" / f"validation-v{version}.html"
    result = Validation(settings.model_name, str(version), night, [], report,
                        validated_on, seconds, champion, f"{criteria.source} (sha256 {criteria.sha256[:12]})")
    sections: dict[str, str] = {}
    if is_spark(test.target):
        result.gates = [smoke.check_on_spark(test, str(version), test.schema)]
        lap("smoke")
        if result.passed:
            result.gates, sections, result.scores = _test_environment_on_spark(
                test, str(version), champion, night, criteria, result.gates, lap)
    else:
        result.gates = [smoke.check(test, str(version), test.schema)]
        lap("smoke")
        if result.passed:
            result.gates, sections, result.scores = _test_environment(
                test, str(version), champion, night, criteria, result.gates, lap)
    title = f"Validation of {result.model_name} version {result.version}"
    _log_report(settings, result, validation_report.render(title, validated_on, result.gates, sections))
    lap("report")
    record(settings, result, actor, criteria)
    return result


def _test_environment(
    test: Settings,
    version: str,
    champion: str | None,
    night: date,
    criteria: acceptance.AcceptanceCriteria,
    done: list[GateResult],
    lap: Callable[[str], None],
) -> tuple[list[GateResult], dict[str, str], score_distribution.ScoreDistribution | None]:
    """Score the night with the version's champion and the version in the test schema, then the ML, computational,
    fairness, explainability gates; returns them, the report's sections and the version's score distribution."""
    champion_run = computational_validation.score_in_child(test, test.schema, night, champion)
    champion_scores = written_scores(test, night).rename(columns={"score": "champion_score"})
    try:
        challenger_run = computational_validation.score_in_child(test, test.schema, night, version)
    except CustlabelError as error:
        return [*done, GateResult("test_scoring", False, str(error))], {}, None
    challenger_scores = written_scores(test, night).rename(columns={"score": "challenger_score"})
    lap("test scoring")
    frame = evaluation_rows(test, night).merge(champion_scores, on="customer_id").merge(challenger_scores, on="customer_id")
    model = registry.load_version(test, version, CHALLENGER)
    has_champion = champion_run.model_name != rule_baseline.MODEL_NAME
    champion_threshold = _champion_threshold(test, champion_run.model_version) if has_champion else None
    return _gates(frame, model, champion, champion_threshold, (challenger_run, champion_run), criteria, done, lap)


def _test_environment_on_spark(
    test: Settings,
    version: str,
    champion: str | None,
    night: date,
    criteria: acceptance.AcceptanceCriteria,
    done: list[GateResult],
    lap: Callable[[str], None],
) -> tuple[list[GateResult], dict[str, str], score_distribution.ScoreDistribution | None]:
    """The test environment on Spark: the champion and the version label the test night in measured child
    processes (the computational gate), then the night's sampled rows read from its database are scored by the
    version and its champion (the rule baseline's scores without one) in this process for the ML, fairness and
    explainability gates."""
    champion_run = computational_validation.score_in_child_on_spark(test, test.schema, night, champion)
    try:
        challenger_run = computational_validation.score_in_child_on_spark(test, test.schema, night, version)
    except CustlabelError as error:
        return [*done, GateResult("test_scoring", False, str(error))], {}, None
    lap("test scoring")
    frame = evaluation_rows(test, night)
    model = registry.load_version(test, version, CHALLENGER)
    frame["challenger_score"] = model.scores(frame)
    champion_threshold = None
    if champion is None:
        frame["champion_score"] = frame["rule_score"]
    else:
        frame["champion_score"] = registry.load_version(test, champion, CHAMPION).scores(frame)
        champion_threshold = _champion_threshold(test, champion)
    lap("ml scoring")
    return _gates(frame, model, champion, champion_threshold, (challenger_run, champion_run), criteria, done, lap)


def _gates(
    frame: pd.DataFrame,
    model: DeployedModel,
    champion: str | None,
    champion_threshold: float | None,
    runs: tuple[computational_validation.ScoringRun, computational_validation.ScoringRun],
    criteria: acceptance.AcceptanceCriteria,
    done: list[GateResult],
    lap: Callable[[str], None],
) -> tuple[list[GateResult], dict[str, str], score_distribution.ScoreDistribution]:
    """The ML, computational, fairness and explainability gates on the scored frame and the (challenger, champion)
    scoring runs; returns them after `done`, the report's sections and the version's score distribution."""
    challenger_run, champion_run = runs
    judged = _judge(frame, model, champion_threshold, criteria, lap)
    cost = computational_validation.judge(challenger_run, champion_run, criteria.computational)
    name = validation_report.champion_name(champion)
    sections = validation_report.sections(frame, model.threshold, champion_threshold, name, judged.fair, judged.explained,
                                          {"challenger": challenger_run, name: champion_run})
    scores = score_distribution.ScoreDistribution.of(frame["challenger_score"].to_numpy())
    return [*done, *judged.ml, *cost, *judged.fair.gates, judged.explained.gate], sections, scores


@dataclass(frozen=True)
class _Judged:
    ml: list[GateResult]
    fair: fairness.FairnessReport
    explained: explainability.ExplainReport


def _judge(frame: pd.DataFrame, model: DeployedModel, champion_threshold: float | None,
           criteria: acceptance.AcceptanceCriteria, lap: Callable[[str], None]) -> _Judged:
    """The ML, fairness and explainability verdicts on the scored test rows (champion_threshold None: the rule's)."""
    y = frame[LABEL_COLUMN].to_numpy()
    ml = performance_gates.performance_gates(
        y, frame["challenger_score"].to_numpy(), model.threshold, frame["rule_score"].to_numpy(), rule_baseline.THRESHOLD,
        frame["champion_score"].to_numpy() if champion_threshold is not None else None, champion_threshold, criteria,
    )
    lap("ml validation")
    flagged = frame["challenger_score"].to_numpy() >= model.threshold
    fair = fairness.report(frame, flagged, y, criteria.fairness)
    lap("fairness")
    explained = explainability.report(model.pipeline, list(model.feature_columns), frame, y)
    lap("explainability")
    return _Judged(ml, fair, explained)


def _champion_threshold(settings: Settings, version: str) -> float:
    tags = registry.get_version(settings, version).tags
    return float(tags.get("threshold", 0.5))
