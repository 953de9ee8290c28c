"""The release: train, judge the rule baseline on the same test rows, register the version, record the baseline, promote.

A release is one MLflow run: a nested run per candidate search and one for the
rule baseline, the chosen pipeline registered (alias `challenger` by default) with
its tags, model card and evaluation files. With a run key (the nightly flow run's
id) a retried release reuses the version an earlier attempt registered.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from custlabel import acceptance, baseline, evaluate, features, model_card, model_families, registry, train, training_data
from custlabel.config import Settings, get_settings
from custlabel.deployed import CHALLENGER, CHAMPION, FALLBACK
from custlabel.features import CATEGORICAL_FEATURES, LABEL_COLUMN, MODEL_FEATURES, NUMERIC_FEATURES


@dataclass(frozen=True)
class Release:
    """A training and the version it registered."""

    trained: train.TrainResult
    model_name: str
    version: str
    run_id: str
    alias: str | None
    promoted: bool = False

    def summary_lines(self) -> list[str]:
        """What `custlabel train` prints."""
        alias = f", alias {self.alias}" if self.alias else ""
        promoted = f"; promoted to {CHAMPION}" if self.promoted else ""
        return [
            *train.summary_lines(self.trained),
            f"registered {self.model_name} version {self.version}{alias} (MLflow run {self.run_id}){promoted}; "
            f"training took {self.trained.seconds:.0f} s",
        ]


def code_revision(project_dir: Path) -> str:
    """The git commit of the code, with "-dirty" when the work tree has changes; "unknown" outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(project_dir), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(project_dir), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


# The modules whose code decides what a training learns: a change to any of them is the code trigger.
TRAINING_MODULES = (features, training_data, model_families, train, evaluate)
CODE_TAG = "training_code_sha256"


def training_code_sha256() -> str:
    """A hash of the training modules' source, recorded on every version (tag training_code_sha256)."""
    digest = hashlib.sha256()
    for module in TRAINING_MODULES:
        digest.update(Path(inspect.getfile(module)).read_bytes())
    return digest.hexdigest()[:16]


def config_hash(result: train.TrainResult) -> str:
    """The registry's hash of what decides this training besides the data."""
    return registry.config_hash(
        train.config_dict(result.config),
        result.criteria.sha256,
        [NUMERIC_FEATURES, CATEGORICAL_FEATURES],
        model_families.search_spaces(),
    )


def version_tags(settings: Settings, result: train.TrainResult) -> dict[str, str]:
    """What a version records: data window, code revision, config hash, operating point, test figures."""
    plan, chosen = result.data.plan, result.selection.chosen
    tags = {
        "data_window": f"{plan.train_dates[0]}..{plan.test_date}",
        **plan.tags(),
        "train_rows": str(len(result.data.train)),
        "validation_rows": str(len(result.data.validation)),
        "test_rows": str(len(result.data.test)),
        "sampling": result.data.sampling,
        "code_revision": code_revision(settings.project_dir),
        "config_hash": config_hash(result),
        CODE_TAG: training_code_sha256(),
        "acceptance_sha256": result.criteria.sha256,
        "candidate": chosen.name,
        "best_params": json.dumps(chosen.best_params, default=str, sort_keys=True),
        "threshold": repr(result.threshold),
        "threshold_policy": chosen.validation_point.policy,
        "meets_acceptance": str(result.meets_acceptance).lower(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **result.test_metrics.as_tags("test_"),
    }
    if result.baseline_metrics is not None:
        tags.update(result.baseline_metrics.as_tags("baseline_test_"))
    return tags


def _log_searches(result: train.TrainResult) -> None:
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


def _write_evaluation(result: train.TrainResult, card: str, folder: Path) -> None:
    scores = result.test_scores
    y = scores[LABEL_COLUMN].to_numpy()
    curves = {f"model ({result.selection.chosen.name})": (y, scores["score"].to_numpy())}
    if result.baseline_metrics is not None:
        curves["rule baseline"] = (y, scores["baseline_score"].to_numpy())
    point = (result.test_metrics.precision, result.test_metrics.recall)
    evaluate.plot_precision_recall(curves, point, folder / "precision_recall.png")
    evaluate.plot_calibration(y, scores["score"].to_numpy(), folder / "calibration.png")
    (folder / "model_card.md").write_text(card)
    scores.to_csv(folder / "test_scores.csv.gz", index=False)


def register(settings: Settings, result: train.TrainResult, alias: str | None, run_key: str | None = None) -> Release:
    """One parent run per training: the searches, the rule baseline, the figures; the version registered and aliased."""
    chosen, plan = result.selection.chosen, result.data.plan
    tags = {"kind": "training", **plan.tags(), "candidate": chosen.name}
    if run_key:
        tags[registry.RUN_KEY_TAG] = run_key
    with registry.training_run(settings, f"train test={plan.test_date}", tags) as run_id:
        registry.log_figures(
            {
                **{f"config_{key}": value for key, value in train.config_dict(result.config).items()},
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
            },
        )
        _log_searches(result)
        if result.baseline_metrics is not None:
            registry.record_baseline(
                settings, baseline.RULE, baseline.sql_text(settings), result.baseline_metrics, plan.test_date, nested=True
            )
        version = registry.register_model(
            settings,
            chosen.pipeline,
            result.data.train[MODEL_FEATURES].head(200),
            result.threshold,
            model_families.trusted_types(),
            run_key,
        )
        version_record = version_tags(settings, result)
        card = model_card.render(settings.model_name, version, result, version_record)
        with tempfile.TemporaryDirectory() as folder:
            _write_evaluation(result, card, Path(folder))
            registry.describe_version(settings, version, version_record, card, Path(folder))
        if alias:
            registry.set_alias(alias, version, settings)
    return Release(result, settings.model_name, version, run_id, alias)


def approve(settings: Settings, version: str, approved_by: str) -> None:
    """Make a version champion, recording who approved it."""
    registry.set_alias(CHAMPION, version, settings)
    registry.tag_version(settings, version, {"approved_by": approved_by})


def train_and_register(
    settings: Settings | None = None,
    config: train.TrainConfig | None = None,
    criteria: acceptance.AcceptanceCriteria | None = None,
    alias: str | None = CHALLENGER,
    run_key: str | None = None,
    auto_approved_by: str | None = None,
) -> Release:
    """`custlabel train` and the nightly training: train, judge the rule on the same test rows, register, record.

    Args:
        run_key: an attempt-independent key of the run (the flow run id): a retry reuses its version.
        auto_approved_by: promote the version to champion when it meets acceptance, recording this approver.
    """
    settings = settings or get_settings()
    config = config or train.TrainConfig()
    criteria = criteria or acceptance.load(settings=settings)
    started = time.perf_counter()
    data = training_data.load(settings, config.validation_dates, config.train_rows_per_date, config.eval_rows_per_date)
    result = train.train(data, criteria, config)
    result.baseline_metrics, result.test_scores = baseline.evaluate_on(settings, result.test_scores)
    result.seconds = time.perf_counter() - started
    release = register(settings, result, alias, run_key)
    if auto_approved_by and result.meets_acceptance:
        approve(settings, release.version, auto_approved_by)
        return Release(result, release.model_name, release.version, release.run_id, release.alias, promoted=True)
    return release


def record_baseline(settings: Settings | None = None) -> list[str]:
    """`custlabel baseline`: judge the rule on the newest matured night and record it in the registry."""
    settings = settings or get_settings()
    test_date, metrics = baseline.evaluate_latest(settings)
    if metrics is None:
        raise evaluate.EvaluationError(
            f"{settings.schema}.{baseline.RELATION} does not exist: run `custlabel dbt build` first"
        )
    version = registry.record_baseline(settings, baseline.RULE, baseline.sql_text(settings), metrics, test_date)
    return [
        f"rule baseline on {test_date}: precision {metrics.precision:.3f} recall {metrics.recall:.3f} "
        f"F1 {metrics.f1:.3f} ROC AUC {metrics.roc_auc:.3f} PR AUC {metrics.pr_auc:.3f}",
        f"recorded as {baseline.MODEL_NAME} version {version} (alias {FALLBACK})",
    ]
