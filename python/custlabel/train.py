"""The search: candidate families over time-ordered folds of the train rows, chosen on validation, tested once."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score
from sklearn.model_selection import ParameterGrid, RandomizedSearchCV
from sklearn.pipeline import Pipeline

from custlabel import acceptance, evaluate, ml_gates, model_families
from custlabel.gates import GateResult, all_passed
from custlabel.features import KEY_COLUMNS, LABEL_COLUMN, MODEL_FEATURES
from custlabel.training_data import TrainingData, TrainingDataError


@dataclass(frozen=True)
class TrainConfig:
    """How a training samples, splits and searches (hashed into the version's config hash)."""

    # Sampling caps, per as_of_date; stratified by is_bad, deterministic (hash of the key).
    train_rows_per_date: int = 10_000
    eval_rows_per_date: int = 200_000
    validation_dates: int = 1
    max_folds: int = 2
    search_iterations: int = 4
    n_jobs: int = 2
    random_state: int = 0
    candidates: tuple[str, ...] = tuple(model_families.FAMILIES)


@dataclass
class CandidateResult:
    """One candidate's search: the refitted best pipeline and its validation operating point."""

    name: str
    pipeline: Pipeline
    best_params: dict
    cv_score: float
    cv_results: pd.DataFrame
    validation_point: evaluate.OperatingPoint
    validation_pr_auc: float
    fit_seconds: float

    def rank_key(self) -> tuple:
        """Feasible operating points first, then what the threshold policy maximised, then validation PR AUC."""
        point = self.validation_point
        return (point.feasible, point.objective, self.validation_pr_auc)


@dataclass
class Selection:
    """The searches and the chosen candidate."""

    candidates: list[CandidateResult]
    chosen: CandidateResult = field(init=False)

    def __post_init__(self) -> None:
        self.chosen = max(self.candidates, key=CandidateResult.rank_key)


@dataclass
class TrainResult:
    """What one training produced: the choice, its test figures and (judged by the release) the baseline's."""

    data: TrainingData
    selection: Selection
    config: TrainConfig
    criteria: acceptance.AcceptanceCriteria
    test_metrics: evaluate.Metrics
    test_scores: pd.DataFrame
    seconds: float = 0.0
    baseline_metrics: evaluate.Metrics | None = None
    gates: list[GateResult] = field(default_factory=list)

    @property
    def threshold(self) -> float:
        return self.selection.chosen.validation_point.threshold

    @property
    def passed_gates(self) -> bool:
        """Whether the release judged the version and every gate passed."""
        return bool(self.gates) and all_passed(self.gates)


def time_folds(dates: pd.Series, gap_days: int, max_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds grouped by as_of_date that respect time: each held-out date is scored by a fit on the dates
    whose outcome windows (gap_days) had ended by then; the newest such dates are held out."""
    values = np.asarray(dates)
    gap = timedelta(days=gap_days)
    unique = sorted(set(values))
    held_out = [night for night in unique if unique[0] + gap <= night][-max_folds:]
    if not held_out:
        raise TrainingDataError(
            f"time-ordered folds need two training as_of_dates at least one outcome window ({gap_days} days) "
            f"apart; the train period has {unique[0]}..{unique[-1]}"
        )
    return [
        (np.flatnonzero([day + gap <= night for day in values]), np.flatnonzero(values == night))
        for night in held_out
    ]


def search_candidate(
    name: str,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    criteria: acceptance.AcceptanceCriteria,
    config: TrainConfig,
    gap_days: int,
) -> CandidateResult:
    """Search one family over time-ordered folds of the train rows; judge it on validation."""
    family = model_families.get(name)
    started = time.perf_counter()
    search = RandomizedSearchCV(
        model_families.build_pipeline(family.make(config.random_state)),
        family.space,
        n_iter=min(config.search_iterations, len(ParameterGrid(family.space))),
        scoring="average_precision",
        cv=time_folds(train["as_of_date"], gap_days, config.max_folds),
        n_jobs=config.n_jobs,
        random_state=config.random_state,
        refit=True,
    )
    search.fit(train[MODEL_FEATURES], train[LABEL_COLUMN])
    scores = search.best_estimator_.predict_proba(validation[MODEL_FEATURES])[:, 1]
    y = validation[LABEL_COLUMN].to_numpy()
    point = ml_gates.choose_threshold(y, scores, criteria.performance)
    return CandidateResult(
        name=name,
        pipeline=search.best_estimator_,
        best_params={key.removeprefix("model__"): value for key, value in search.best_params_.items()},
        cv_score=float(search.best_score_),
        cv_results=pd.DataFrame(search.cv_results_).drop(columns="params"),
        validation_point=point,
        validation_pr_auc=float(average_precision_score(y, scores)),
        fit_seconds=time.perf_counter() - started,
    )


def select(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    criteria: acceptance.AcceptanceCriteria,
    config: TrainConfig,
    gap_days: int,
) -> Selection:
    """Fit every candidate on the train rows only and choose on the validation rows."""
    evaluate.check_labels(train[LABEL_COLUMN].to_numpy(), "train period")
    evaluate.check_labels(validation[LABEL_COLUMN].to_numpy(), "validation period")
    return Selection(
        [search_candidate(name, train, validation, criteria, config, gap_days) for name in config.candidates]
    )


def score_test(selection: Selection, test: pd.DataFrame) -> tuple[evaluate.Metrics, pd.DataFrame]:
    """The chosen model's test figures at the threshold chosen on validation."""
    chosen = selection.chosen
    scores = chosen.pipeline.predict_proba(test[MODEL_FEATURES])[:, 1]
    frame = test[[*KEY_COLUMNS, LABEL_COLUMN]].assign(score=scores)
    return evaluate.metrics_at(
        frame[LABEL_COLUMN].to_numpy(), scores, chosen.validation_point.threshold
    ), frame


def train(data: TrainingData, criteria: acceptance.AcceptanceCriteria, config: TrainConfig) -> TrainResult:
    """Search every candidate on the train rows, choose on validation, report the choice's test figures."""
    started = time.perf_counter()
    selection = select(data.train, data.validation, criteria, config, data.plan.gap_days)
    test_metrics, test_scores = score_test(selection, data.test)
    return TrainResult(data, selection, config, criteria, test_metrics, test_scores, time.perf_counter() - started)


def config_dict(config: TrainConfig) -> dict:
    """The training configuration as plain values (for parameters and hashing)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()}


def summary_lines(result: TrainResult) -> list[str]:
    """What `custlabel train` prints about the training."""
    plan, chosen, test = result.data.plan, result.selection.chosen, result.test_metrics
    lines = [
        f"split: train {plan.train_dates[0]}..{plan.train_dates[-1]} ({len(result.data.train)} rows), "
        f"validation {', '.join(map(str, plan.validation_dates))} ({len(result.data.validation)} rows), "
        f"test {plan.test_date} ({len(result.data.test)} rows), gap {plan.gap_days} days between periods and folds",
    ]
    for candidate in result.selection.candidates:
        point = candidate.validation_point
        lines.append(
            f"  {candidate.name:<24} cv AP {candidate.cv_score:.3f}  validation AP {candidate.validation_pr_auc:.3f}  "
            f"precision {point.precision:.3f} recall {point.recall:.3f}  ({candidate.fit_seconds:.0f} s)"
        )
    lines.append(
        f"chosen: {chosen.name} {chosen.best_params}, threshold {result.threshold:.4f} ({chosen.validation_point.policy})"
    )
    figures = [("model", test)] + (
        [("rule baseline", result.baseline_metrics)] if result.baseline_metrics else []
    )
    for name, metrics in figures:
        lines.append(
            f"test {name:<14} precision {metrics.precision:.3f} recall {metrics.recall:.3f} F1 {metrics.f1:.3f} "
            f"ROC AUC {metrics.roc_auc:.3f} PR AUC {metrics.pr_auc:.3f}  "
            f"[tn {metrics.tn} fp {metrics.fp} fn {metrics.fn} tp {metrics.tp}]"
        )
    for gate in result.gates:
        lines.append(f"gate {gate.name:<16} {gate.verdict}: {gate.reason}")
    return lines
