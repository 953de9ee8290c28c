"""MLflow: the tracking store, training runs, registered versions and the aliases other code uses.

The registry records what it is given (parameters, figures, tags, files, a fitted
pipeline) and imports no stage: the release decides what a version records.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
import sklearn
import sqlalchemy.exc
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model, infer_signature
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistrySqlStore
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingSqlStore

from custlabel.config import TARGET_SCHEMAS, Settings
from custlabel.errors import CustlabelError
from custlabel.training import evaluate
from custlabel.training.deployed_model import FALLBACK, DeployedModel
from custlabel.training.features import MODEL_FEATURES
from custlabel.warehouse import locking, retry

MISSING = "RESOURCE_DOES_NOT_EXIST"
# Tag of a version with the key of the run that registered it: a retried run reuses the version.
RUN_KEY_TAG = "release_key"
# Tags every version gets at registration: the environment it was trained in, and its files' hashes.
TARGET_TAG = "target"
SCHEMA_TAG = "schema"
ARTIFACT_HASH_TAG = "artifact_sha256"
PROD = "prod"
# Written by MLflow into every download of a registered model (its name and version), not a model file.
DOWNLOAD_METADATA = "registered_model_meta"
# Folders of reports logged with a version after its registration (describe_version, log_version_files): never loaded.
REPORT_FOLDERS = ("evaluation", "validation")

log = logging.getLogger(__name__)


class NoModelRegisteredError(CustlabelError):
    """No model is registered under the configured name yet."""


class TargetMismatchError(CustlabelError):
    """A version trained for one target was asked to take another target's alias."""


class ArtifactTamperedError(CustlabelError):
    """A version's model files differ from the hashes recorded at its registration."""


class StoreUnusableError(CustlabelError):
    """The MLflow store (tracking database or artifact folder) failed while a version was being registered."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


# MLflow errors that blame the request, not the store: these stay as MLflow raised them.
REQUEST_ERROR_CODES = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE", "RESOURCE_ALREADY_EXISTS", MISSING}


def is_store_failure(error: BaseException) -> bool:
    """Whether an error raised while registering is the store's: its database's, its folder's, or MLflow's own."""
    if isinstance(error, MlflowException):
        return error.error_code not in REQUEST_ERROR_CODES
    return isinstance(error, (sqlalchemy.exc.SQLAlchemyError, OSError))


def store_failed(settings: Settings, error: BaseException) -> StoreUnusableError:
    """The error naming the store that failed; MLflow's connections to it are reset so that a retry opens it afresh."""
    forget_store_connections()
    first_line = (str(error).strip().splitlines() or [""])[0]
    return StoreUnusableError(
        f"the MLflow store failed during registration (tracking store {settings.mlflow_tracking_uri}, artifact folder"
        f" {settings.mlflow_artifact_root}): {type(error).__name__}: {first_line}. No version"
        " entered the release log; make the store readable and writable again (disk space, mount, a damaged"
        " tracking database) and run the training again: a retry of the same run registers one version",
        retry.is_transient(error),
    )


def forget_store_connections() -> None:
    """Close MLflow's pooled connections to its tracking databases, so that the next call opens them afresh.

    MLflow keeps one engine per database URI for the life of the process; after a failure (a damaged or
    replaced sqlite file), its pooled connections still point at the broken file, and a retry in the
    same process (a Prefect task retry, the simulation's next night) would fail although the store is fixed.
    """
    for store in (TrackingSqlStore, RegistrySqlStore):
        for engine in list(getattr(store, "_engine_map", {}).values()):
            engine.dispose()


def alias_name(settings: Settings, alias: str) -> str:
    """The registry's name of a target's alias: prod keeps `champion`, test has `test-champion`, dev `dev-champion`."""
    return alias if settings.target == PROD else f"{settings.target}-{alias}"


def _logical_alias(settings: Settings, registered: str) -> str | None:
    """The target's own name of a registered alias, None when the alias belongs to another target."""
    if settings.target == PROD:
        others = [f"{target}-" for target in TARGET_SCHEMAS if target != PROD]
        return None if registered.startswith(tuple(others)) else registered
    prefix = f"{settings.target}-"
    return registered.removeprefix(prefix) if registered.startswith(prefix) else None


def artifact_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every model file under a folder, by path relative to it (not what MLflow writes on download)."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != DOWNLOAD_METADATA
    }


def point_mlflow_at(uri: str) -> None:
    """Make uri MLflow's store in this process, leaving the environment as it was.

    MLflow also writes the URI into MLFLOW_TRACKING_URI and MLFLOW_REGISTRY_URI, which
    would make every later get_settings() of this process (a Prefect worker serving
    another target, the next test) read this store instead of its own configuration.
    """
    before = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def configure(settings: Settings) -> str:
    """Point MLflow at the configured store and return the experiment id (created with our artifact root)."""
    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(urlparse(uri).path).parent.mkdir(parents=True, exist_ok=True)
    point_mlflow_at(uri)
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


def config_hash(config: dict[str, Any], acceptance_sha256: str, features: list[list[str]], spaces: dict[str, Any]) -> str:
    """A hash of what decides a training besides the data: config, acceptance criteria, feature contract, search spaces."""
    payload = {"config": config, "acceptance": acceptance_sha256, "features": features, "spaces": spaces}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


@contextmanager
def training_run(settings: Settings, run_name: str, tags: dict[str, str]) -> Iterator[str]:
    """The parent MLflow run of one training (yields its id); the other log calls write into it."""
    experiment_id = configure(settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags(tags)
        yield run.info.run_id


def log_figures(params: dict[str, Any], metrics: dict[str, float]) -> None:
    """Parameters and metrics of the active run."""
    mlflow.log_params(params)
    mlflow.log_metrics(metrics)


def log_search(name: str, chosen: bool, params: dict[str, Any], metrics: dict[str, float], cv_results_csv: str) -> None:
    """One candidate's search as a run nested in the active one."""
    with mlflow.start_run(run_name=f"search {name}", nested=True):
        mlflow.set_tags({"candidate": name, "chosen": str(chosen).lower()})
        log_figures({"candidate": name, **params}, metrics)
        mlflow.log_text(cv_results_csv, "cv_results.csv")


def find_version(settings: Settings, run_key: str) -> ModelVersion | None:
    """The version of the configured model registered by the run with this key, if any."""
    found = client(settings).search_model_versions(
        f"name = '{settings.model_name}' and tags.{RUN_KEY_TAG} = '{run_key}'"
    )
    return min(found, key=lambda version: int(version.version)) if found else None


def register_model(
    settings: Settings,
    pipeline: Any,
    sample: pd.DataFrame,
    threshold: float,
    trusted_types: list[str],
    run_key: str | None = None,
) -> str:
    """Log a fitted pipeline to the active run and register it as a new version of the configured model.

    Args:
        trusted_types: the types skops must trust to load the pipeline.
        run_key: the key of the run (attempt-independent): the version a previous attempt
            registered under it is returned instead of a new one.
    """
    if run_key:
        existing = find_version(settings, run_key)
        if existing is not None:
            log.info("run %s already registered %s version %s: reusing it", run_key, settings.model_name, existing.version)
            return str(existing.version)
    info = mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=infer_signature(sample, pipeline.predict_proba(sample)),
        pyfunc_predict_fn="predict_proba",
        metadata={"threshold": threshold, "feature_columns": list(sample.columns), "positive_class": "bad"},
        pip_requirements=[
            f"scikit-learn=={sklearn.__version__}",
            f"pandas=={pd.__version__}",
            f"numpy=={np.__version__}",
            "skops",
        ],
        skops_trusted_types=trusted_types,
    )
    with tempfile.TemporaryDirectory() as folder:
        hashes = artifact_hashes(Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=folder)))
    tags = {TARGET_TAG: settings.target, SCHEMA_TAG: settings.schema, ARTIFACT_HASH_TAG: json.dumps(hashes, sort_keys=True)}
    if run_key:
        tags[RUN_KEY_TAG] = run_key
    # Registered with its key and hashes in one call, so a retry finds it even if the run died right after.
    version = mlflow.register_model(f"models:/{info.model_id}", settings.model_name, tags=tags)
    return str(version.version)


def describe_version(settings: Settings, version: str, tags: dict[str, str], description: str, evaluation: Path) -> None:
    """Tag a version, keep the evaluation files with it and the active run, and set its description."""
    registry = client(settings)
    for key, value in tags.items():
        registry.set_model_version_tag(settings.model_name, version, key, value)
    mlflow.log_artifacts(str(evaluation), "evaluation")
    model_id = registry.get_model_version(settings.model_name, version).model_id
    if model_id:
        registry.log_model_artifacts(model_id, str(evaluation), "evaluation")
    registry.update_model_version(settings.model_name, version, description=description)


def tag_version(settings: Settings, version: str, tags: dict[str, str]) -> None:
    """Set tags on a version of the configured model."""
    locking.check_held()
    registry = client(settings)
    for key, value in tags.items():
        registry.set_model_version_tag(settings.model_name, version, key, value)


def _aliased(registry: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points at, None when the alias is unset (the model must exist)."""
    version = registry.get_registered_model(name).aliases.get(alias)
    return None if version is None else registry.get_model_version(name, str(version))


def _fallback_version(registry: MlflowClient, settings: Settings, name: str) -> ModelVersion | None:
    try:
        return _aliased(registry, name, alias_name(settings, FALLBACK))
    except MlflowException as error:
        if error.error_code == MISSING:
            return None
        raise


def record_baseline(
    settings: Settings,
    rule: DeployedModel,
    rule_sql: str,
    metrics: evaluate.Metrics,
    test_date: date,
    nested: bool = False,
) -> str:
    """Record the rule baseline: a run with its test figures; a registered version (the target's alias `fallback`) per rule text."""
    experiment_id = configure(settings)
    registry = client(settings)
    sql_hash = hashlib.sha256(rule_sql.encode()).hexdigest()[:16]
    tags = {
        "relation": str(rule.relation),
        "threshold": repr(rule.threshold),
        "role": "fallback while no model is champion",
        "sql_sha256": sql_hash,
        "test_date": str(test_date),
        TARGET_TAG: settings.target,
        SCHEMA_TAG: settings.schema,
        **metrics.as_tags("test_"),
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=rule.name, nested=nested):
        mlflow.set_tags({"kind": "rule-baseline", "candidate": rule.name, "test_date": str(test_date)})
        mlflow.log_metrics(metrics.as_dict("test_"))
        mlflow.log_text(rule_sql, f"{rule.relation}.sql")
        current = _fallback_version(registry, settings, rule.name)
        if current is None or current.tags.get("sql_sha256") != sql_hash:
            model = mlflow.create_external_model(
                name=rule.name,
                model_type="sql-rule",
                params={"relation": str(rule.relation), "threshold": str(rule.threshold)},
                experiment_id=experiment_id,
            )
            mlflow.log_metrics(metrics.as_dict("test_"), model_id=model.model_id)
            current = mlflow.register_model(f"models:/{model.model_id}", rule.name)
            registry.update_model_version(
                rule.name,
                current.version,
                description=f"Transparent SQL rule (dbt model {rule.relation}); labels the customers while no model is champion.",
            )
            registry.set_registered_model_alias(rule.name, alias_name(settings, FALLBACK), current.version)
        for key, value in tags.items():
            registry.set_model_version_tag(rule.name, current.version, key, value)
    return str(current.version)


def load_fallback(settings: Settings, rule: DeployedModel) -> DeployedModel | None:
    """The rule baseline's registered version (the target's alias `fallback`), or None when it was never recorded."""
    version = _fallback_version(client(settings), settings, rule.name)
    if version is None:
        return None
    return replace(
        rule,
        version=str(version.version),
        alias=FALLBACK,
        relation=version.tags.get("relation", rule.relation),
        threshold=float(version.tags.get("threshold", rule.threshold)),
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


def _unrecorded(found: dict[str, str], recorded: dict[str, str]) -> list[str]:
    """Files of a download outside the recorded set, except the report folders custlabel adds after registration."""
    return sorted(path for path in found if path not in recorded and path.split("/", 1)[0] not in REPORT_FOLDERS)


def verified_copy(settings: Settings, version: ModelVersion, folder: Path) -> Path:
    """Download a version's model files into a folder and check each against the hashes recorded at registration.

    The registry store is the trust boundary: a file changed there after registration,
    missing, or added beside the recorded ones is refused before anything deserializes it.
    """
    name, number = settings.model_name, str(version.version)
    recorded = version.tags.get(ARTIFACT_HASH_TAG)
    if not recorded:
        raise ArtifactTamperedError(
            f"{name} version {number} has no recorded artifact hashes (tag {ARTIFACT_HASH_TAG}): it was not "
            "registered by custlabel, so its files cannot be checked; refusing to load it (train a new version)"
        )
    hashes = json.loads(recorded)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{number}", dst_path=str(folder)))
    found = artifact_hashes(local)
    for path, digest in hashes.items():
        if path not in found:
            raise ArtifactTamperedError(f"{name} version {number}: model file {path} is missing from the registry store")
        if found[path] != digest:
            raise ArtifactTamperedError(
                f"{name} version {number}: model file {path} changed since registration "
                f"(sha256 {found[path][:12]}…, recorded {digest[:12]}…); refusing to load it"
            )
    if added := _unrecorded(found, hashes):
        raise ArtifactTamperedError(
            f"{name} version {number}: files not recorded at registration were added to the registry store "
            f"({', '.join(added)}); refusing to load it"
        )
    return local


@contextmanager
def verified_files(settings: Settings, version: ModelVersion | str) -> Iterator[Path]:
    """A temporary copy of a version's model files that match its recorded hashes: the one way any model is read."""
    if isinstance(version, str):
        version = get_version(settings, version)
    with tempfile.TemporaryDirectory() as folder:
        yield verified_copy(settings, version, Path(folder))


def load_version(settings: Settings, version: ModelVersion | str, alias: str) -> DeployedModel:
    """A registered version (or its number), loaded from a copy whose files match the hashes recorded at registration."""
    if isinstance(version, str):
        version = get_version(settings, version)
    with verified_files(settings, version) as local:
        metadata = Model.load(str(local / "MLmodel")).metadata or {}
        pipeline = mlflow.sklearn.load_model(str(local))
    return DeployedModel(
        name=settings.model_name,
        version=str(version.version),
        alias=alias,
        threshold=float(metadata.get("threshold", version.tags.get("threshold", 0.5))),
        pipeline=pipeline,
        feature_columns=list(metadata.get("feature_columns", MODEL_FEATURES)),
    )


def load_alias(settings: Settings, alias: str) -> DeployedModel | None:
    """The version behind the target's alias (`models:/<name>@<alias_name>`), loaded; None when the alias is not set.

    Raises NoModelRegisteredError when no model is registered under the name at all,
    ArtifactTamperedError when the version's files changed since registration.
    """
    version = _version_by_alias(client(settings), settings.model_name, alias_name(settings, alias))
    if version is None:
        return None
    return load_version(settings, version, alias)


def get_version(settings: Settings, version: str) -> ModelVersion:
    """A version of the configured model, with a clear error when it does not exist."""
    try:
        return client(settings).get_model_version(settings.model_name, str(version))
    except MlflowException as error:
        if error.error_code in (MISSING, "INVALID_PARAMETER_VALUE"):
            raise NoModelRegisteredError(f"{settings.model_name} has no version {version!r}") from error
        raise


def logged_model_id(version: ModelVersion) -> str | None:
    """The logged model behind a version: MLflow's sqlite registry leaves `model_id` empty, the source names it."""
    if version.model_id:
        return version.model_id
    source = version.source or ""
    return source.removeprefix("models:/") if source.startswith("models:/m-") else None


def log_version_files(settings: Settings, version: str, folder: Path, artifact_path: str) -> None:
    """Keep a folder of files with a version (its logged model's artifacts) and with the active run."""
    mlflow.log_artifacts(str(folder), artifact_path)
    model_id = logged_model_id(get_version(settings, version))
    if model_id:
        client(settings).log_model_artifacts(model_id, str(folder), artifact_path)


def set_alias(settings: Settings, alias: str, version: str) -> None:
    """Point the target's alias at a version trained for the same target (never another target's alias)."""
    locking.check_held()
    trained_for = get_version(settings, version).tags.get(TARGET_TAG)
    if trained_for != settings.target:
        raise TargetMismatchError(
            f"{settings.model_name} version {version} was trained for target {trained_for or '(not recorded)'}; "
            f"target {settings.target} cannot point its alias {alias_name(settings, alias)!r} at it"
        )
    client(settings).set_registered_model_alias(settings.model_name, alias_name(settings, alias), version)


def delete_alias(settings: Settings, alias: str) -> None:
    """Unset the target's alias."""
    locking.check_held()
    client(settings).delete_registered_model_alias(settings.model_name, alias_name(settings, alias))


def alias_versions(settings: Settings) -> dict[str, str]:
    """The target's aliases of the configured model (by their target-free names) and the versions they point at."""
    try:
        model = client(settings).get_registered_model(settings.model_name)
    except MlflowException as error:
        if error.error_code == MISSING:
            return {}
        raise
    aliases = {_logical_alias(settings, alias): str(version) for alias, version in model.aliases.items()}
    return {alias: version for alias, version in aliases.items() if alias is not None}


def version_tags(settings: Settings) -> dict[str, dict[str, str]]:
    """The versions of the configured model trained for the target, and their tags, by version number."""
    found = client(settings).search_model_versions(f"name = '{settings.model_name}'")
    return {
        str(version.version): dict(version.tags) for version in found if version.tags.get(TARGET_TAG) == settings.target
    }
