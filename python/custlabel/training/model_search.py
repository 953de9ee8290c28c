"""The search: candidate families over time-ordered folds of the train rows, chosen on validation, tested once."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.metrics import average_precision_score
from sklearn.model_selection import ParameterGrid, RandomizedSearchCV
from sklearn.pipeline import Pipeline

from custlabel.config import SearchSize
from custlabel.errors import CustlabelError
from custlabel.gate_verdicts import GateResult, all_passed
from custlabel.training import (
    acceptance,
    bgnbd,
    calibration,
    evaluate,
    model_families,
    recalibration,
    threshold_cut,
)
from custlabel.training.features import KEY_COLUMNS, LABEL_COLUMN
from custlabel.training.training_data import (
    FeatureSet,
    TrainingData,
    TrainingDataError,
    usable_features,
)


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
    # largest calibration error on validation before the chosen model is recalibrated
    calibration_tolerance: float = calibration.DEFAULT_TOLERANCE
    # refit the chosen settings on every matured night and let that refit label
    refit: bool = True


def sized(search: SearchSize) -> TrainConfig:
    """TrainConfig with the search size of the settings (CUSTLABEL_SEARCH_*), its defaults elsewhere."""
    unknown = sorted(set(search.candidates or ()) - set(model_families.FAMILIES))
    if unknown:
        raise CustlabelError(
            f"CUSTLABEL_SEARCH_CANDIDATES names unknown model families {', '.join(unknown)}: "
            f"expected some of {', '.join(model_families.FAMILIES)}"
        )
    return TrainConfig(**search.overrides())


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
    """The searches, the features they used and the chosen candidate."""

    candidates: list[CandidateResult]
    features: FeatureSet
    chosen: CandidateResult = field(init=False)

    def __post_init__(self) -> None:
        self.chosen = max(self.candidates, key=CandidateResult.rank_key)


@dataclass(frozen=True)
class BuyTillYouDie:
    """The BG/NBD baseline: fitted on the train customers with a purchase, ranking the test customers with one.

    BG/NBD has no summary for a customer without a purchase, so both rankings are judged
    on the test rows it covers; the model's labels at their own threshold on those rows
    give the recall at which BG/NBD's precision is read.
    """

    params: bgnbd.BGNBDParameters
    average_precision: float
    precision_at_recall: float
    recall: float
    model_average_precision: float
    model_precision: float
    rows: int
    test_rows: int

    def as_dict(self, prefix: str = "bgnbd_") -> dict[str, float]:
        return {
            f"{prefix}test_pr_auc": self.average_precision,
            f"{prefix}test_precision_at_model_recall": self.precision_at_recall,
            f"{prefix}test_model_pr_auc": self.model_average_precision,
            f"{prefix}test_rows": float(self.rows),
            **{f"{prefix}{name}": value for name, value in self.params.as_dict().items()},
        }

    def as_tags(self, prefix: str = "bgnbd_") -> dict[str, str]:
        return {key: f"{value:.4f}" for key, value in self.as_dict(prefix).items()}


@dataclass(frozen=True)
class Refit:
    """The chosen settings refitted on every matured night, checked against the held-out version on the test night."""

    pipeline: Pipeline | recalibration.RecalibratedClassifier
    nights: tuple[date, ...]
    rows: int
    # the held-out version's operating point on the refit's scale (as fitted, or through the held-out Platt map)
    threshold: float
    spearman: float
    label_agreement: float
    # on the newest matured night, of the same settings fitted on every matured night but that one
    calibration: calibration.CalibrationCheck
    # the held-out version's calibration error on that night
    held_out_calibration_error: float
    seconds: float

    @property
    def labels(self) -> bool:
        """Whether the refit labels: its calibration error on the newest matured night is within the tolerance or the held-out version's."""
        error = self.calibration.expected_calibration_error
        return error <= max(self.calibration.tolerance, self.held_out_calibration_error)

    @property
    def scale(self) -> str:
        if isinstance(self.pipeline, recalibration.RecalibratedClassifier):
            return "through the held-out version's Platt map"
        return "as fitted"

    @property
    def note(self) -> str:
        check = self.calibration
        verdict = (
            "the refit labels"
            if self.labels
            else f"the held-out version labels: the refit's calibration error {check.expected_calibration_error:.4f} "
            f"is beyond both the tolerance {check.tolerance} and the held-out version's {self.held_out_calibration_error:.4f}"
        )
        return (
            f"refit on {len(self.nights)} matured nights ({self.nights[0]}..{self.nights[-1]}, {self.rows:,} rows, "
            f"{self.seconds:.0f} s): on the test night Spearman {self.spearman:.3f} and label agreement "
            f"{self.label_agreement:.2%} with the held-out version; calibration error there, fitted without it, "
            f"{check.expected_calibration_error:.4f} {self.scale} (held-out version {self.held_out_calibration_error:.4f}); {verdict}"
        )

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: `refit_*`."""
        return {
            "refit_rows": float(self.rows),
            "refit_test_spearman": self.spearman,
            "refit_test_label_agreement": self.label_agreement,
            "refit_seconds": self.seconds,
            **self.calibration.as_dict("refit_calibration_"),
        }

    def tags(self) -> dict[str, str]:
        """Version tags: the nights it learned from, the check of the two versions, which one labels."""
        return {
            "refit_nights": ",".join(map(str, self.nights)),
            "refit_rows": str(self.rows),
            "refit_test_spearman": f"{self.spearman:.4f}",
            "refit_test_label_agreement": f"{self.label_agreement:.4f}",
            **self.calibration.as_tags("refit_calibration_"),
            "refit_labels": str(self.labels).lower(),
            "refit_note": self.note,
        }


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
    bgnbd: BuyTillYouDie | None = None
    calibration: calibration.Calibration | None = None
    refit: Refit | None = None

    @property
    def feature_columns(self) -> list[str]:
        return self.selection.features.columns

    @property
    def threshold(self) -> float:
        """The held-out version's threshold (the one the gates judged)."""
        return self.selection.chosen.validation_point.threshold

    @property
    def labels_with_refit(self) -> bool:
        return self.refit is not None and self.refit.labels

    @property
    def labelling_pipeline(self) -> Pipeline:
        """What gets registered: the refit when it labels, else the held-out version."""
        return self.refit.pipeline if self.labels_with_refit else self.selection.chosen.pipeline

    @property
    def labelling_threshold(self) -> float:
        return self.refit.threshold if self.labels_with_refit else self.threshold

    def learned_from(self) -> dict[str, tuple[date, ...]]:
        """The nights each version learned from: the held-out version, and the refit when there is one."""
        nights = {"held-out version": self.data.plan.train_dates}
        if self.refit is not None:
            nights["refit"] = self.refit.nights
        return nights

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
    features: FeatureSet,
    weights: np.ndarray | None = None,
) -> CandidateResult:
    """Search one family over time-ordered folds of the train rows (weighted per row if given); judge it on validation."""
    family = model_families.get(name)
    started = time.perf_counter()
    columns = features.columns
    pipeline = model_families.pipeline_for(
        family, config.random_state, list(features.numeric), list(features.categorical), gap_days
    )
    search = RandomizedSearchCV(
        pipeline,
        family.space,
        n_iter=min(config.search_iterations, len(ParameterGrid(family.space))),
        scoring="average_precision",
        cv=time_folds(train["as_of_date"], gap_days, config.max_folds),
        n_jobs=config.n_jobs,
        random_state=config.random_state,
        refit=True,
    )
    fit_params = {} if weights is None else {"model__sample_weight": weights}
    search.fit(train[columns], train[LABEL_COLUMN], **fit_params)
    scores = search.best_estimator_.predict_proba(validation[columns])[:, 1]
    y = validation[LABEL_COLUMN].to_numpy()
    point = evaluate.business_threshold(y, scores, criteria.performance)
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
    weights: np.ndarray | None = None,
) -> Selection:
    """Fit every candidate on the train rows only, over the features they can fill, and choose on the validation rows."""
    evaluate.check_labels(train[LABEL_COLUMN].to_numpy(), "train period")
    evaluate.check_labels(validation[LABEL_COLUMN].to_numpy(), "validation period")
    features = usable_features(train)
    return Selection(
        [
            search_candidate(name, train, validation, criteria, config, gap_days, features, weights)
            for name in config.candidates
        ],
        features,
    )


def calibrate_chosen(
    selection: Selection, validation: pd.DataFrame, test: pd.DataFrame, tolerance: float
) -> calibration.Calibration:
    """Check the chosen model's calibration on validation and test; recalibrate it on validation when needed.

    A recalibrated choice gets the wrapped pipeline and the threshold mapped alike, so
    its labels are the same and the test figures, registration and scoring follow it.
    """
    chosen, columns = selection.chosen, selection.features.columns
    checked = calibration.calibrate(
        chosen.pipeline,
        chosen.validation_point.threshold,
        *(
            calibration.Outcomes(rows[LABEL_COLUMN].to_numpy(), chosen.pipeline.predict_proba(rows[columns])[:, 1])
            for rows in (validation, test)
        ),
        tolerance,
    )
    chosen.pipeline = checked.model
    chosen.validation_point = replace(chosen.validation_point, threshold=checked.threshold)
    return checked


def score_test(selection: Selection, test: pd.DataFrame) -> tuple[evaluate.Metrics, pd.DataFrame]:
    """The chosen model's test figures at the threshold chosen on validation."""
    chosen = selection.chosen
    scores = chosen.pipeline.predict_proba(test[selection.features.columns])[:, 1]
    frame = test[[*KEY_COLUMNS, LABEL_COLUMN]].assign(score=scores)
    return evaluate.metrics_at(
        frame[LABEL_COLUMN].to_numpy(), scores, chosen.validation_point.threshold
    ), frame


def buy_till_you_die(
    train: pd.DataFrame, test_scores: pd.DataFrame, test: pd.DataFrame, threshold: float, window_days: int, weights: np.ndarray | None = None
) -> tuple[BuyTillYouDie | None, pd.DataFrame]:
    """Fit BG/NBD on the train customers with a purchase, rank the test customers with one by P(no purchase in the window).

    None when its inputs are missing or the covered test rows hold one class. Returns the
    baseline and the test scores with `bgnbd_score` added (NaN without a purchase).
    """
    if train[bgnbd.INPUT_FEATURES].isna().all().any():
        return None, test_scores.assign(bgnbd_score=np.nan)
    fitted = bgnbd.has_purchase(train)
    params = bgnbd.fit(bgnbd.summarise(train[fitted]), None if weights is None else weights[fitted])
    covered = bgnbd.has_purchase(test)
    scores = np.full(len(test), np.nan)
    scores[covered] = bgnbd.probability_no_purchase(params, bgnbd.summarise(test[covered]), window_days)
    y = test_scores[LABEL_COLUMN].to_numpy()[covered]
    if y.min(initial=1) == y.max(initial=0):
        return None, test_scores.assign(bgnbd_score=scores)
    model = test_scores["score"].to_numpy()[covered]
    labels = evaluate.metrics_at(y, model, threshold)
    baseline = BuyTillYouDie(
        params,
        float(average_precision_score(y, scores[covered])),
        evaluate.precision_at_recall(y, scores[covered], labels.recall),
        labels.recall,
        float(average_precision_score(y, model)),
        labels.precision,
        int(covered.sum()),
        len(test),
    )
    return baseline, test_scores.assign(bgnbd_score=scores)


def refit_chosen(
    selection: Selection, checked: calibration.Calibration, data: TrainingData, config: TrainConfig
) -> tuple[Refit, np.ndarray]:
    """Fit the chosen settings again on every matured night (train, validation, test; weighted as training was).

    Same settings means the same hyperparameters and operating point. The refit's
    calibration is checked out of sample: the same settings fitted on every matured
    night but the newest, scored on the newest (a model scored on rows it learned from
    looks overconfident, a forest most of all). A recalibrated choice's Platt map
    corrected the held-out fit, which the refit may not need: the refit keeps the scale
    (as fitted, or through that map at the threshold mapped alike, so the labels are the
    same) that this check finds better calibrated. The two versions are compared on the
    newest matured night (the test night). Returns the refit and its scores on the test rows.
    """
    started = time.perf_counter()
    rows, weights = data.refit_rows(config.train_rows_per_date, config.random_state)
    columns = selection.features.columns
    chosen = selection.chosen.pipeline

    def fit_on(keep: np.ndarray) -> Pipeline:
        fit_params = {} if weights is None else {"model__sample_weight": weights[keep]}
        return clone(recalibration.uncalibrated(chosen)).fit(rows.loc[keep, columns], rows.loc[keep, LABEL_COLUMN], **fit_params)

    def as_fitted(model: Pipeline) -> Pipeline:
        return model

    def through_the_map(model: Pipeline) -> recalibration.RecalibratedClassifier:
        return recalibration.RecalibratedClassifier(model, chosen.slope, chosen.intercept)

    scales = [(as_fitted, checked.threshold_as_trained)]
    if isinstance(chosen, recalibration.RecalibratedClassifier):
        scales.append((through_the_map, checked.threshold))
    test = data.test
    y = test[LABEL_COLUMN].to_numpy()
    without_newest = fit_on((rows["as_of_date"] != data.plan.test_date).to_numpy())
    checks = [
        calibration.check(
            y, scale(without_newest).predict_proba(test[columns])[:, 1], threshold, tolerance=config.calibration_tolerance
        )
        for scale, threshold in scales
    ]
    best = int(np.argmin([check.expected_calibration_error for check in checks]))
    scale, threshold = scales[best]
    pipeline = scale(fit_on(np.ones(len(rows), dtype=bool)))
    refitted = pipeline.predict_proba(test[columns])[:, 1]
    held_out = chosen.predict_proba(test[columns])[:, 1]
    agreement = threshold_cut.is_bad(refitted, threshold) == threshold_cut.is_bad(held_out, checked.threshold)
    refit = Refit(
        pipeline=pipeline,
        nights=tuple(sorted(set(rows["as_of_date"]))),
        rows=len(rows),
        threshold=threshold,
        spearman=float(spearmanr(held_out, refitted).statistic),
        label_agreement=float(agreement.mean()),
        calibration=checks[best],
        held_out_calibration_error=(checked.recalibrated_test or checked.test).expected_calibration_error,
        seconds=time.perf_counter() - started,
    )
    return refit, refitted


def train(data: TrainingData, criteria: acceptance.AcceptanceCriteria, config: TrainConfig) -> TrainResult:
    """Search every candidate on the train rows, choose on validation, report the choice's and BG/NBD's test figures; refit."""
    started = time.perf_counter()
    weights = data.train_weights()
    selection = select(data.train, data.validation, criteria, config, data.plan.gap_days, weights)
    checked = calibrate_chosen(selection, data.validation, data.test, config.calibration_tolerance)
    test_metrics, test_scores = score_test(selection, data.test)
    baseline, test_scores = buy_till_you_die(
        data.train, test_scores, data.test, selection.chosen.validation_point.threshold, data.plan.gap_days, weights
    )
    result = TrainResult(data, selection, config, criteria, test_metrics, test_scores)
    result.bgnbd = baseline
    result.calibration = checked
    if config.refit:
        result.refit, refit_scores = refit_chosen(selection, checked, data, config)
        result.test_scores = result.test_scores.assign(refit_score=refit_scores)
    result.seconds = time.perf_counter() - started
    return result


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
    lines += result.selection.features.lines()
    lines += night_lines(result.data)
    for candidate in result.selection.candidates:
        point = candidate.validation_point
        lines.append(
            f"  {candidate.name:<24} cv AP {candidate.cv_score:.3f}  validation AP {candidate.validation_pr_auc:.3f}  "
            f"precision {point.precision:.3f} recall {point.recall:.3f}  ({candidate.fit_seconds:.0f} s)"
        )
    lines.append(
        f"chosen: {chosen.name} {chosen.best_params}, threshold {result.threshold:.4f} ({chosen.validation_point.policy})"
    )
    if result.calibration is not None:
        lines.append(f"calibration: {result.calibration.note}")
    if result.refit is not None:
        lines.append(result.refit.note)
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
    if result.bgnbd is not None:
        lines.append(bgnbd_line(result))
    return lines


def night_lines(data: TrainingData) -> list[str]:
    """The eligible population of each night beside tonight's, and what was done with truncated nights."""
    check = data.nights
    if check is None:
        return []
    roles = {d: "train" for d in data.plan.train_dates} | {d: "validation" for d in data.plan.validation_dates}
    roles[data.plan.test_date] = "test"
    roles |= {d: "left out" for d in check.left_out}
    lines = [f"  {p.line(roles.get(p.as_of_date, 'unused'))}" for p in check.populations if p.as_of_date in roles]
    if check.tonight is not None:
        lines.append(f"  {check.tonight.line('tonight')}")
    return ["eligible customers per night (active: a sale in the 90 days before):", *lines, check.policy]


def bgnbd_line(result: TrainResult) -> str:
    """The model against BG/NBD on the test rows BG/NBD covers (customers with a purchase), at the recall the model's labels reach there."""
    baseline = result.bgnbd
    params = ", ".join(f"{k} {v:.3g}" for k, v in baseline.params.as_dict().items())
    return (
        f"test BG/NBD ({params}; time in {bgnbd.TIME_UNIT}) on the {baseline.rows:,} of {baseline.test_rows:,} test customers "
        f"with a purchase: AP {baseline.average_precision:.3f} vs model {baseline.model_average_precision:.3f}; "
        f"precision at recall {baseline.recall:.3f}: BG/NBD {baseline.precision_at_recall:.3f} vs model labels {baseline.model_precision:.3f}"
    )
