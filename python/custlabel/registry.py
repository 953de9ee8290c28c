"""MLflow: the local tracking store, training runs, registered versions and the aliases other code uses."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
import sklearn
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from sklearn.pipeline import Pipeline

from custlabel import baseline, evaluate, model_card
from custlabel.config import Settings, get_settings
from custlabel.errors import CustlabelError
from custlabel.features import CATEGORICAL_FEATURES, LABEL_COLUMN, MODEL_FEATURES, NUMERIC_FEATURES

if TYPE_CHECKING:
    from custlabel.train import TrainResult

CHALLENGER = "challenger"
CHAMPION = "champion"
FALLBACK = "fallback"
# Types skops must trust to load our pipelines (the fitted trees and numpy dtypes); nothing else is allowed.
TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]
MISSING = "RESOURCE_DOES_NOT_EXIST"

log = logging.getLogger(__name__)


class NoModelRegisteredError(CustlabelError):
    """No model is registered under the configured name yet."""


@dataclass(frozen=True)
class DeployedModel:
    """A registered version found by alias: `pipeline.predict_proba(frame[feature_columns])[:, 1]` is P(bad)."""

    name: str
    version: str
    alias: str
    threshold: float
    pipeline: Pipeline
    feature_columns: list[str]


@dataclass(frozen=True)
class FallbackModel:
    """The rule baseline as recorded in the registry: its labels are the rows of `relation`."""

    name: str
    version: str
    relation: str
    threshold: float


def configure(settings: Settings) -> str:
    """Point MLflow at the configured store and return the experiment id (created with our artifact root)."""
    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(urlparse(uri).path).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    experiment = client.get_experiment_by_name(settings.model_name)
    if experiment is None:
        settings.mlflow_artifact_root.mkdir(parents=True, exist_ok=True)
        experiment_id = client.create_experiment(
            settings.model_name, artifact_location=settings.mlflow_artifact_root.as_uri()
        )
    else:
        experiment_id = experiment.experiment_id
    # Nested runs and logged models take the active experiment.
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def client(settings: Settings) -> MlflowClient:
    """A client of the configured tracking store and registry."""
    configure(settings)
    return MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)


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


def config_hash(result: TrainResult) -> str:
    """A hash of what decides a training besides the data: config, acceptance criteria, feature contract."""
    from custlabel.train import candidate_spaces, config_dict

    payload = {
        "config": config_dict(result.config),
        "acceptance": result.criteria.sha256,
        "features": [NUMERIC_FEATURES, CATEGORICAL_FEATURES],
        "spaces": {name: space for name, (_, space) in candidate_spaces(result.config.random_state).items()},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _confusion(metrics: evaluate.Metrics) -> str:
    return f"tn={metrics.tn} fp={metrics.fp} fn={metrics.fn} tp={metrics.tp}"


def _metric_tags(metrics: evaluate.Metrics, prefix: str) -> dict[str, str]:
    tags = {
        f"{prefix}{key}": f"{getattr(metrics, key):.4f}"
        for key in ("precision", "recall", "f1", "roc_auc", "pr_auc")
    }
    tags[f"{prefix}confusion_matrix"] = _confusion(metrics)
    return tags


def version_tags(settings: Settings, result: TrainResult) -> dict[str, str]:
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
        "acceptance_sha256": result.criteria.sha256,
        "candidate": chosen.name,
        "best_params": json.dumps(chosen.best_params, default=str, sort_keys=True),
        "threshold": repr(result.threshold),
        "threshold_policy": chosen.validation_point.policy,
        "meets_acceptance": str(result.meets_acceptance).lower(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **_metric_tags(result.test_metrics, "test_"),
    }
    if result.baseline_metrics is not None:
        tags.update(_metric_tags(result.baseline_metrics, "baseline_test_"))
    return tags


def _log_candidate(candidate: Any, chosen: bool) -> None:
    with mlflow.start_run(run_name=f"search {candidate.name}", nested=True):
        mlflow.set_tags({"candidate": candidate.name, "chosen": str(chosen).lower()})
        mlflow.log_params(
            {"candidate": candidate.name, **{f"best_{k}": v for k, v in candidate.best_params.items()}}
        )
        point = candidate.validation_point
        mlflow.log_metrics(
            {
                "cv_average_precision": candidate.cv_score,
                "validation_pr_auc": candidate.validation_pr_auc,
                "validation_threshold": point.threshold,
                "validation_precision": point.precision,
                "validation_recall": point.recall,
                "fit_seconds": candidate.fit_seconds,
            }
        )
        mlflow.log_text(candidate.cv_results.to_csv(index=False), "cv_results.csv")


def _plots(result: TrainResult, folder: Path) -> None:
    scores = result.test_scores
    y = scores[LABEL_COLUMN].to_numpy()
    curves = {f"model ({result.selection.chosen.name})": (y, scores["score"].to_numpy())}
    if result.baseline_metrics is not None:
        curves["rule baseline"] = (y, scores["baseline_score"].to_numpy())
    point = (result.test_metrics.precision, result.test_metrics.recall)
    evaluate.plot_precision_recall(curves, point, folder / "precision_recall.png")
    evaluate.plot_calibration(y, scores["score"].to_numpy(), folder / "calibration.png")


def _log_model(settings: Settings, result: TrainResult) -> tuple[ModelVersion, str]:
    sample = result.data.train[MODEL_FEATURES].head(200)
    pipeline = result.selection.chosen.pipeline
    info = mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=infer_signature(sample, pipeline.predict_proba(sample)),
        registered_model_name=settings.model_name,
        pyfunc_predict_fn="predict_proba",
        metadata={"threshold": result.threshold, "feature_columns": MODEL_FEATURES, "positive_class": "bad"},
        pip_requirements=[
            f"scikit-learn=={sklearn.__version__}",
            f"pandas=={pd.__version__}",
            f"numpy=={np.__version__}",
            "skops",
        ],
        skops_trusted_types=TRUSTED_TYPES,
    )
    return client(settings).get_model_version(
        settings.model_name, str(info.registered_model_version)
    ), info.model_id


def log_training(settings: Settings, result: TrainResult, alias: str | None = CHALLENGER) -> str:
    """One parent run per training (a nested run per candidate search), the model registered and aliased."""
    experiment_id = configure(settings)
    registry = client(settings)
    chosen = result.selection.chosen
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"train test={result.data.plan.test_date}"
    ) as run:
        mlflow.set_tags({"kind": "training", **result.data.plan.tags(), "candidate": chosen.name})
        from custlabel.train import config_dict

        mlflow.log_params({f"config_{k}": v for k, v in config_dict(result.config).items()})
        mlflow.log_params(
            {
                "min_precision": result.criteria.performance.min_precision,
                "min_recall": result.criteria.performance.min_recall,
                "chosen_candidate": chosen.name,
            }
        )
        for candidate in result.selection.candidates:
            _log_candidate(candidate, candidate is chosen)
        if result.baseline_metrics is not None:
            record_baseline(settings, result.baseline_metrics, result.data.plan.test_date, nested=True)
        mlflow.log_metrics(
            {
                "threshold": result.threshold,
                "validation_precision": chosen.validation_point.precision,
                "validation_recall": chosen.validation_point.recall,
                "training_seconds": result.seconds,
                **result.test_metrics.as_dict("test_"),
                **(result.baseline_metrics.as_dict("baseline_test_") if result.baseline_metrics else {}),
            }
        )
        version, model_id = _log_model(settings, result)
        tags = version_tags(settings, result)
        for key, value in tags.items():
            registry.set_model_version_tag(settings.model_name, version.version, key, value)
        card = model_card.render(settings.model_name, str(version.version), result, tags)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            _plots(result, folder)
            (folder / "model_card.md").write_text(card)
            result.test_scores.to_csv(folder / "test_scores.csv.gz", index=False)
            mlflow.log_artifacts(tmp, "evaluation")
            registry.log_model_artifacts(model_id, tmp, "evaluation")
        registry.update_model_version(settings.model_name, version.version, description=card)
        if alias:
            registry.set_registered_model_alias(settings.model_name, alias, version.version)
        result.run_id, result.model_name, result.model_version = (
            run.info.run_id,
            settings.model_name,
            str(version.version),
        )
        result.alias = alias
    return result.model_version


def _aliased(registry: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points at, None when the alias is unset (the model must exist)."""
    version = registry.get_registered_model(name).aliases.get(alias)
    return None if version is None else registry.get_model_version(name, str(version))


def _fallback_version(registry: MlflowClient) -> ModelVersion | None:
    try:
        return _aliased(registry, baseline.MODEL_NAME, FALLBACK)
    except MlflowException as error:
        if error.error_code == MISSING:
            return None
        raise


def record_baseline(
    settings: Settings, metrics: evaluate.Metrics, test_date: date, nested: bool = False
) -> str:
    """Record the rule baseline: a run with its test figures; a registered version (alias `fallback`) per rule text."""
    experiment_id = configure(settings)
    registry = client(settings)
    text = baseline.sql_text(settings)
    sql_hash = hashlib.sha256(text.encode()).hexdigest()[:16]
    tags = {
        "relation": baseline.RELATION,
        "threshold": repr(baseline.THRESHOLD),
        "role": "fallback while no model is champion",
        "sql_sha256": sql_hash,
        "test_date": str(test_date),
        **_metric_tags(metrics, "test_"),
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=baseline.MODEL_NAME, nested=nested):
        mlflow.set_tags(
            {"kind": "rule-baseline", "candidate": baseline.MODEL_NAME, "test_date": str(test_date)}
        )
        mlflow.log_metrics(metrics.as_dict("test_"))
        mlflow.log_text(text, f"{baseline.RELATION}.sql")
        current = _fallback_version(registry)
        if current is None or current.tags.get("sql_sha256") != sql_hash:
            model = mlflow.create_external_model(
                name=baseline.MODEL_NAME,
                model_type="sql-rule",
                params={"relation": baseline.RELATION, "threshold": str(baseline.THRESHOLD)},
                experiment_id=experiment_id,
            )
            mlflow.log_metrics(metrics.as_dict("test_"), model_id=model.model_id)
            current = mlflow.register_model(f"models:/{model.model_id}", baseline.MODEL_NAME)
            registry.update_model_version(
                baseline.MODEL_NAME,
                current.version,
                description=f"Transparent SQL rule (dbt model {baseline.RELATION}); labels the customers while no model is champion.",
            )
            registry.set_registered_model_alias(baseline.MODEL_NAME, FALLBACK, current.version)
        for key, value in tags.items():
            registry.set_model_version_tag(baseline.MODEL_NAME, current.version, key, value)
    return str(current.version)


def load_fallback(settings: Settings | None = None) -> FallbackModel | None:
    """The rule baseline's registered version (alias `fallback`), or None when it was never recorded."""
    settings = settings or get_settings()
    version = _fallback_version(client(settings))
    if version is None:
        return None
    return FallbackModel(
        name=baseline.MODEL_NAME,
        version=str(version.version),
        relation=version.tags.get("relation", baseline.RELATION),
        threshold=float(version.tags.get("threshold", baseline.THRESHOLD)),
    )


def _version_by_alias(registry: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return _aliased(registry, name, alias)
    except MlflowException as error:
        if error.error_code == MISSING:
            raise NoModelRegisteredError(
                f"no model is registered under {name!r} yet: run `custlabel train` first"
            ) from error
        raise


def load_alias(alias: str, settings: Settings | None = None) -> DeployedModel | None:
    """The version behind `models:/<name>@<alias>`, loaded; None when the alias is not set.

    Raises NoModelRegisteredError when no model is registered under the name at all.
    """
    settings = settings or get_settings()
    version = _version_by_alias(client(settings), settings.model_name, alias)
    if version is None:
        return None
    uri = f"models:/{settings.model_name}/{version.version}"
    metadata = mlflow.models.get_model_info(uri).metadata or {}
    return DeployedModel(
        name=settings.model_name,
        version=str(version.version),
        alias=alias,
        threshold=float(metadata.get("threshold", version.tags.get("threshold", 0.5))),
        pipeline=mlflow.sklearn.load_model(uri),
        feature_columns=list(metadata.get("feature_columns", MODEL_FEATURES)),
    )


def set_alias(alias: str, version: str, settings: Settings | None = None) -> None:
    """Point an alias of the configured model at a version."""
    settings = settings or get_settings()
    client(settings).set_registered_model_alias(settings.model_name, alias, version)


def alias_versions(settings: Settings | None = None) -> dict[str, str]:
    """The aliases of the configured model and the versions they point at."""
    settings = settings or get_settings()
    try:
        model = client(settings).get_registered_model(settings.model_name)
    except MlflowException as error:
        if error.error_code == MISSING:
            return {}
        raise
    return {alias: str(version) for alias, version in model.aliases.items()}
