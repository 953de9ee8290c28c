"""Train, judge the version by the ML gates on the test rows, register it, and enter it in the lifecycle.

A release is one MLflow run: a nested run per candidate search and one for the
rule baseline, the chosen pipeline registered with its tags, gate verdicts, model
card and evaluation files. A version that passes every gate is `registered` in the
release lifecycle (the registry projects it as `challenger`); one that fails is
registered for the record and `rejected` at once: whoever labels today keeps
labelling. With a run key (the nightly flow run's id) a retried release reuses the
version an earlier attempt registered.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from custlabel.config import Settings
from custlabel.gate_verdicts import GATES_PASSED_TAG, GateResult, failures
from custlabel.monitoring import drift_reference
from custlabel.release import fingerprint, lifecycle, model_card, performance_gates
from custlabel.training import (
    acceptance,
    evaluate,
    model_families,
    model_search,
    registry,
    rule_baseline,
    training_data,
)
from custlabel.training.deployed_model import (
    CHALLENGER,
    CHAMPION,
    FALLBACK,
    DeployedModel,
)
from custlabel.training.features import (
    CATEGORICAL_FEATURES,
    LABEL_COLUMN,
    NUMERIC_FEATURES,
)


@dataclass(frozen=True)
class Release:
    """A training and the version it registered."""

    trained: model_search.TrainResult
    model_name: str
    version: str
    run_id: str
    alias: str | None

    def summary_lines(self) -> list[str]:
        """What `custlabel train` prints."""
        alias = f", alias {self.alias}" if self.alias else ""
        if not self.trained.passed_gates:
            alias = ", REJECTED by the release gates (above): no alias moved"
        return [
            *model_search.summary_lines(self.trained),
            f"registered {self.model_name} version {self.version}{alias} (MLflow run {self.run_id}); "
            f"training took {self.trained.seconds:.0f} s",
        ]


def config_hash(result: model_search.TrainResult) -> str:
    """The registry's hash of what decides this training besides the data."""
    return registry.config_hash(
        model_search.config_dict(result.config),
        result.criteria.sha256,
        [NUMERIC_FEATURES, CATEGORICAL_FEATURES],
        model_families.search_spaces(),
    )


def version_tags(settings: Settings, result: model_search.TrainResult) -> dict[str, str]:
    """What a version records: data window, code revision, config hash, operating point, test figures."""
    plan, chosen = result.data.plan, result.selection.chosen
    tags = {
        "data_window": f"{plan.train_dates[0]}..{plan.test_date}",
        **plan.tags(),
        "train_rows": str(len(result.data.train)),
        "validation_rows": str(len(result.data.validation)),
        "test_rows": str(len(result.data.test)),
        "sampling": result.data.sampling,
        "code_revision": fingerprint.code_revision(settings.project_dir),
        "config_hash": config_hash(result),
        fingerprint.CODE_TAG: fingerprint.training_code_sha256(settings),
        "acceptance_sha256": result.criteria.sha256,
        "candidate": chosen.name,
        "best_params": json.dumps(chosen.best_params, default=str, sort_keys=True),
        "threshold": repr(result.labelling_threshold),
        "heldout_threshold": repr(result.threshold),
        "threshold_policy": chosen.validation_point.policy,
        "validation_lift": f"{chosen.validation_point.lift:.4f}",
        "validation_bad_share": f"{chosen.validation_point.share:.4f}",
        GATES_PASSED_TAG: str(result.passed_gates).lower(),
        **dict(gate.tag() for gate in result.gates),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **result.test_metrics.as_tags("test_"),
        "feature_columns": json.dumps(result.feature_columns),
        "features_left_out": json.dumps(result.selection.features.left_out, sort_keys=True),
        **(result.data.nights.tags() if result.data.nights else {}),
    }
    if result.baseline_metrics is not None:
        tags.update(result.baseline_metrics.as_tags("baseline_test_"))
    if result.bgnbd is not None:
        tags.update(result.bgnbd.as_tags())
    if result.calibration is not None:
        tags.update(result.calibration.tags())
    if result.refit is not None:
        tags.update(result.refit.tags())
    return tags


def _log_searches(result: model_search.TrainResult) -> None:
    for candidate in result.selection.candidates:
        point = candidate.validation_point
        registry.log_search(
            candidate.name,
            candidate is result.selection.chosen,
            {f"best_{key}": value for key, value in candidate.best_params.items()},
            {
                "cv_average_precision": candidate.cv_score,
                "validation_pr_auc": candidate.validation_pr_auc,
                "validation_threshold": point.threshold,
                "validation_precision": point.precision,
                "validation_recall": point.recall,
                "fit_seconds": candidate.fit_seconds,
            },
            candidate.cv_results.to_csv(index=False),
        )


def _write_evaluation(result: model_search.TrainResult, card: str, folder: Path) -> None:
    scores = result.test_scores
    y = scores[LABEL_COLUMN].to_numpy()
    curves = {f"model ({result.selection.chosen.name})": (y, scores["score"].to_numpy())}
    if result.baseline_metrics is not None:
        curves["rule baseline"] = (y, scores["baseline_score"].to_numpy())
    if result.bgnbd is not None:
        covered = scores["bgnbd_score"].notna().to_numpy()
        curves["BG/NBD (customers with a purchase)"] = (y[covered], scores["bgnbd_score"].to_numpy()[covered])
    point = (result.test_metrics.precision, result.test_metrics.recall)
    evaluate.plot_precision_recall(curves, point, folder / "precision_recall.png")
    evaluate.plot_calibration(y, scores["score"].to_numpy(), folder / "calibration.png")
    (folder / "model_card.md").write_text(card)
    scores.to_csv(folder / "test_scores.csv.gz", index=False)


def register(settings: Settings, result: model_search.TrainResult, run_key: str | None = None) -> Release:
    """One parent run per training: the searches, the rule baseline, the figures; the version registered (no alias moves here)."""
    chosen, plan = result.selection.chosen, result.data.plan
    tags = {"kind": "training", **plan.tags(), "candidate": chosen.name}
    if run_key:
        tags[registry.RUN_KEY_TAG] = run_key
    with registry.training_run(settings, f"train test={plan.test_date}", tags) as run_id:
        registry.log_figures(
            {
                **{f"config_{key}": value for key, value in model_search.config_dict(result.config).items()},
                "min_precision": result.criteria.performance.min_precision,
                "min_recall": result.criteria.performance.min_recall,
                "chosen_candidate": chosen.name,
            },
            {
                "threshold": result.threshold,
                "validation_precision": chosen.validation_point.precision,
                "validation_recall": chosen.validation_point.recall,
                "training_seconds": result.seconds,
                **result.test_metrics.as_dict("test_"),
                **(result.baseline_metrics.as_dict("baseline_test_") if result.baseline_metrics else {}),
                **(result.bgnbd.as_dict() if result.bgnbd else {}),
                **(result.calibration.metrics() if result.calibration else {}),
                **(result.refit.metrics() if result.refit else {}),
            },
        )
        _log_searches(result)
        if result.baseline_metrics is not None:
            registry.record_baseline(
                settings, rule_baseline.RULE, rule_baseline.sql_text(settings), result.baseline_metrics, plan.test_date, nested=True
            )
        version = registry.register_model(
            settings,
            result.labelling_pipeline,
            result.data.train[result.feature_columns].head(200),
            result.labelling_threshold,
            model_families.trusted_types(),
            run_key,
        )
        version_record = version_tags(settings, result)
        card = model_card.render(settings.model_name, version, result, version_record)
        with tempfile.TemporaryDirectory() as folder:
            _write_evaluation(result, card, Path(folder))
            registry.describe_version(settings, version, version_record, card, Path(folder))
    return Release(result, settings.model_name, version, run_id, CHALLENGER if result.passed_gates else None)


def current_champion(settings: Settings) -> DeployedModel | None:
    """The target's champion as the release log names it, loaded (None while the rule baseline labels)."""
    version = lifecycle.read(settings).champion
    return None if version is None else registry.load_version(settings, version, CHAMPION)


def judge(result: model_search.TrainResult, champion: DeployedModel | None) -> list[GateResult]:
    """The ML gates on the test rows: operating point, absolute criteria, the rule baseline, the champion."""
    scores = result.test_scores
    has_baseline = result.baseline_metrics is not None
    return [
        performance_gates.operating_point_gate(result.selection.chosen.validation_point),
        *performance_gates.performance_gates(
            scores[LABEL_COLUMN].to_numpy(),
            scores["score"].to_numpy(),
            result.threshold,
            scores["baseline_score"].to_numpy() if has_baseline else None,
            rule_baseline.THRESHOLD,
            scores["champion_score"].to_numpy() if champion else None,
            champion.threshold if champion else None,
            result.criteria,
        ),
    ]


def record_training(settings: Settings, result: model_search.TrainResult, version: str, actor: str) -> None:
    """The version enters the lifecycle: registered, or rejected at once when a gate failed (once per version)."""
    test_date = result.data.plan.test_date
    details = {
        "data_window": f"{result.data.plan.train_dates[0]}..{test_date}",
        "candidate": result.selection.chosen.name,
        "gates": {gate.name: gate.as_dict() for gate in result.gates},
    }
    if result.calibration is not None:
        details["calibration"] = result.calibration.details()
    if result.refit is not None:
        details["refit"] = result.refit.tags()
    verdict = "every gate passed" if result.passed_gates else "a gate failed"
    lifecycle.register(settings, version, actor, verdict, details, test_date, failures(result.gates))


def train_and_register(
    settings: Settings,
    config: model_search.TrainConfig | None = None,
    criteria: acceptance.AcceptanceCriteria | None = None,
    alias: str | None = CHALLENGER,
    run_key: str | None = None,
    actor: str = "custlabel train",
) -> Release:
    """`custlabel train` and the nightly training: train, judge by the gates, register, record.

    Args:
        alias: only challenger (or none): any other alias is refused before training.
        run_key: an attempt-independent key of the run (the flow run id): a retry reuses its version.
    """
    lifecycle.refuse_training_alias(alias)
    config = config or model_search.TrainConfig()
    criteria = criteria or acceptance.load(settings=settings)
    started = time.perf_counter()
    data = training_data.load(settings, config.validation_dates, config.train_rows_per_date, config.eval_rows_per_date)
    result = model_search.train(data, criteria, config)
    champion = current_champion(settings)
    if champion is not None:
        result.test_scores = result.test_scores.assign(champion_score=champion.scores(data.test))
    result.baseline_metrics, result.test_scores = rule_baseline.evaluate_on(settings, result.test_scores)
    result.gates = judge(result, champion)
    result.seconds = time.perf_counter() - started
    try:
        release = register(settings, result, run_key)
    except Exception as error:
        if registry.is_store_failure(error):
            raise registry.store_failed(settings, error) from error
        raise
    record_training(settings, result, release.version, actor)
    drift_reference.store(settings, release.model_name, release.version, result.data.train)
    return release


def record_baseline(settings: Settings) -> list[str]:
    """`custlabel baseline`: judge the rule on the newest matured night and record it in the registry."""
    test_date, metrics = rule_baseline.evaluate_latest(settings)
    if metrics is None:
        raise evaluate.EvaluationError(
            f"{settings.schema}.{rule_baseline.RELATION} does not exist: run `custlabel dbt build` first"
        )
    version = registry.record_baseline(settings, rule_baseline.RULE, rule_baseline.sql_text(settings), metrics, test_date)
    return [
        f"rule baseline on {test_date}: precision {metrics.precision:.3f} recall {metrics.recall:.3f} "
        f"F1 {metrics.f1:.3f} ROC AUC {metrics.roc_auc:.3f} PR AUC {metrics.pr_auc:.3f}",
        f"recorded as {rule_baseline.MODEL_NAME} version {version} (alias {FALLBACK})",
    ]
