"""Training: time-ordered split, candidate searches over time-ordered folds, the chosen model."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from psycopg import sql
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import ParameterGrid, RandomizedSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from custlabel import acceptance, db, evaluate
from custlabel.config import Settings, get_settings
from custlabel.errors import CustlabelError
from custlabel.features import (
    CATEGORICAL_FEATURES,
    KEY_COLUMNS,
    LABEL_COLUMN,
    MODEL_FEATURES,
    NUMERIC_FEATURES,
    SENSITIVE_ATTRIBUTES,
)

TABLE = "training_set"


class TrainingDataError(CustlabelError):
    """The training set cannot support a time-ordered training."""


@dataclass(frozen=True)
class TrainConfig:
    """How a training samples, splits and searches (hashed into the version's config hash)."""

    # Sampling caps, per as_of_date; stratified by is_bad, deterministic (hash of the key).
    train_rows_per_date: int = 10_000
    eval_rows_per_date: int = 200_000
    validation_dates: int = 1
    # None: keep an embargo (train labels matured before validation starts) when history allows.
    embargo: bool | None = None
    max_folds: int = 2
    search_iterations: int = 4
    n_jobs: int = 2
    random_state: int = 0
    candidates: tuple[str, ...] = ("logistic_regression", "random_forest", "hist_gradient_boosting")


@dataclass(frozen=True)
class SplitPlan:
    """Which as_of_dates train, validate and test."""

    train_dates: tuple[date, ...]
    validation_dates: tuple[date, ...]
    test_date: date
    embargo: bool

    def tags(self) -> dict[str, str]:
        return {
            "train_dates": f"{self.train_dates[0]}..{self.train_dates[-1]} ({len(self.train_dates)} dates)",
            "validation_dates": ",".join(str(d) for d in self.validation_dates),
            "test_date": str(self.test_date),
            "split_embargo": str(self.embargo).lower(),
        }


@dataclass
class TrainingData:
    """The sampled frames of one time-ordered split."""

    plan: SplitPlan
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    summary: pd.DataFrame
    sampling: str


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
        point = self.validation_point
        reached = point.recall if point.meets_precision else point.precision
        return (point.meets_precision, point.meets_recall, reached, self.validation_pr_auc)


@dataclass
class Selection:
    """The searches and the chosen candidate."""

    candidates: list[CandidateResult]
    chosen: CandidateResult = field(init=False)

    def __post_init__(self) -> None:
        self.chosen = max(self.candidates, key=CandidateResult.rank_key)


def summary_query(settings: Settings) -> sql.Composed:
    """Rows, bad count and latest window end per as_of_date of the training set."""
    return sql.SQL(
        "select as_of_date, max(window_end) as window_end, count(*) as rows, sum({label}) as bad "
        "from {table} group by as_of_date order by as_of_date"
    ).format(label=sql.Identifier(LABEL_COLUMN), table=sql.Identifier(settings.schema, TABLE))


def time_split(summary: pd.DataFrame, validation_dates: int = 1, embargo: bool | None = None) -> SplitPlan:
    """Split as_of_dates by time: train on older ones, validate on newer, test on the newest.

    With the embargo, a row is only used where its outcome window had ended by
    the as_of_date of the period it helps judge (train before validation,
    validation before test), as it would have been in production.
    """
    frame = summary.sort_values("as_of_date")
    dates = [pd.Timestamp(d).date() for d in frame["as_of_date"]]
    ends = dict(zip(dates, (pd.Timestamp(d).date() for d in frame["window_end"]), strict=True))
    needed = validation_dates + 3
    if len(dates) < needed:
        raise TrainingDataError(
            f"{TABLE} has {len(dates)} matured as_of_dates; a time-ordered split needs at least {needed} "
            "(two to train, validation, test): generate a longer history"
        )
    test = dates[-1]
    if embargo is not False:
        eligible = [d for d in dates[:-1] if ends[d] <= test]
        validation = eligible[-validation_dates:]
        train = [d for d in eligible if d < validation[0] and ends[d] <= validation[0]] if validation else []
        if len(validation) == validation_dates and len(train) >= 2:
            return SplitPlan(tuple(train), tuple(validation), test, embargo=True)
        if embargo:
            raise TrainingDataError(
                f"{TABLE} spans {dates[0]}..{test}: too short for an embargo of one outcome window "
                "between train, validation and test"
            )
    return SplitPlan(
        tuple(dates[: -1 - validation_dates]), tuple(dates[-1 - validation_dates : -1]), test, embargo=False
    )


def _sample_query(settings: Settings) -> sql.Composed:
    # A cheap Bernoulli pre-filter on the key's hash keeps about 1.5 * cap rows per date, so
    # the exact stratified cut (row_number per as_of_date and class) sorts thousands, not millions.
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in [*KEY_COLUMNS, *MODEL_FEATURES, LABEL_COLUMN])
    return sql.SQL(
        "with keep as ("
        " select * from unnest(cast(:dates as date[]), cast(:shares as double precision[])) as keep(as_of_date, share)"
        "), candidates as ("
        " select {columns}, md5(customer_id || as_of_date::text) as sample_key"
        " from {table} inner join keep using (as_of_date)"
        " where keep.share >= 1"
        "  or ('x' || substr(md5(customer_id || as_of_date::text), 1, 8))::bit(32)::bigint < keep.share * 4294967296"
        "), ranked as ("
        " select *,"
        "  row_number() over (partition by as_of_date, {label} order by sample_key) as sample_rank,"
        "  count(*) over (partition by as_of_date, {label}) as stratum_rows,"
        "  count(*) over (partition by as_of_date) as date_rows"
        " from candidates"
        ") select {columns} from ranked"
        " where sample_rank <= ceil(stratum_rows * least(1.0, :cap / date_rows::float))"
        " order by as_of_date, customer_id"
    ).format(
        columns=columns, label=sql.Identifier(LABEL_COLUMN), table=sql.Identifier(settings.schema, TABLE)
    )


def read_rows(settings: Settings, summary: pd.DataFrame, dates: tuple[date, ...], cap: int) -> pd.DataFrame:
    """Rows of the training set for some as_of_dates, at most `cap` per date, stratified by is_bad.

    Args:
        summary: rows per as_of_date (from summary_query), to size the pre-filter.
    """
    rows = dict(zip(pd.to_datetime(summary["as_of_date"]).dt.date, summary["rows"], strict=True))
    shares = [min(1.0, 1.5 * cap / rows[d]) if rows[d] > cap else 1.0 for d in dates]
    params = {"dates": list(dates), "shares": shares, "cap": cap}
    return normalize(db.read_frame(_sample_query(settings).as_string(), params, settings))


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Types the pipeline and the MLflow signature expect: float features, string segment, int label."""
    frame = frame.copy()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    frame[NUMERIC_FEATURES] = frame[NUMERIC_FEATURES].astype("float64")
    frame[CATEGORICAL_FEATURES] = frame[CATEGORICAL_FEATURES].astype("str")
    if LABEL_COLUMN in frame:
        frame[LABEL_COLUMN] = frame[LABEL_COLUMN].astype("int64")
    return frame


def load(settings: Settings, config: TrainConfig) -> TrainingData:
    """Read the training set through its contracted mart, split by time, sampled per as_of_date."""
    summary = db.read_frame(summary_query(settings).as_string(), settings=settings)
    if summary.empty:
        raise TrainingDataError(
            f"{settings.schema}.{TABLE} is empty: run `custlabel dbt build` on a history with matured outcomes"
        )
    if summary["bad"].sum() in (0, summary["rows"].sum()):
        raise TrainingDataError(
            f"{settings.schema}.{TABLE} has only one class (is_bad = {int(summary['bad'].iloc[0] > 0)} on every row)"
        )
    plan = time_split(summary, config.validation_dates, config.embargo)
    return TrainingData(
        plan=plan,
        train=read_rows(settings, summary, plan.train_dates, config.train_rows_per_date),
        validation=read_rows(settings, summary, plan.validation_dates, config.eval_rows_per_date),
        test=read_rows(settings, summary, (plan.test_date,), config.eval_rows_per_date),
        summary=summary,
        sampling=(
            f"at most {config.train_rows_per_date} train rows and {config.eval_rows_per_date} validation/test rows "
            "per as_of_date, stratified by is_bad (same class shares), chosen deterministically by md5(customer_id || as_of_date)"
        ),
    )


def split_frame(frame: pd.DataFrame, plan: SplitPlan) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The train, validation and test rows of an in-memory training set."""
    dates = frame["as_of_date"]
    return (
        frame[dates.isin(plan.train_dates)],
        frame[dates.isin(plan.validation_dates)],
        frame[dates == plan.test_date],
    )


def build_pipeline(estimator: BaseEstimator) -> Pipeline:
    """All preprocessing and the classifier in one Pipeline; sensitive attributes are not features."""
    if set(MODEL_FEATURES) & set(SENSITIVE_ATTRIBUTES):
        raise CustlabelError("a sensitive attribute is listed as a model feature in custlabel.features")
    # Kept to steps orbital can translate to SQL: no missing-value indicators, and the
    # categorical features come without nulls from dbt ('unknown').
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    features = ColumnTransformer(
        [("numeric", numeric, NUMERIC_FEATURES), ("categorical", categorical, CATEGORICAL_FEATURES)],
        remainder="drop",
    )
    return Pipeline([("features", features), ("model", estimator)])


def candidate_spaces(random_state: int) -> dict[str, tuple[BaseEstimator, dict[str, list]]]:
    """Each candidate's estimator and search space (kept small: two shared cores)."""
    return {
        "logistic_regression": (
            LogisticRegression(max_iter=2000),
            {"model__C": [0.01, 0.1, 1.0, 10.0], "model__class_weight": [None, "balanced"]},
        ),
        "random_forest": (
            RandomForestClassifier(n_estimators=100, max_samples=0.5, n_jobs=1, random_state=random_state),
            {
                "model__max_depth": [8, 12, 16],
                "model__min_samples_leaf": [20, 100],
                "model__max_features": ["sqrt", 0.3],
            },
        ),
        "hist_gradient_boosting": (
            HistGradientBoostingClassifier(
                max_iter=200, early_stopping=True, n_iter_no_change=10, random_state=random_state
            ),
            {
                "model__learning_rate": [0.05, 0.1],
                "model__max_leaf_nodes": [15, 31, 63],
                "model__min_samples_leaf": [50, 200],
                "model__l2_regularization": [0.0, 1.0],
            },
        ),
    }


def time_folds(dates: pd.Series, max_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds grouped by as_of_date that respect time: fit on earlier dates, score the next one."""
    values = np.asarray(dates)
    unique = sorted(set(values))
    if len(unique) < 2:
        raise TrainingDataError("time-ordered folds need at least two training as_of_dates")
    return [
        (np.flatnonzero(values < held_out), np.flatnonzero(values == held_out))
        for held_out in unique[-min(max_folds, len(unique) - 1) :]
    ]


def search_candidate(
    name: str,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    criteria: acceptance.AcceptanceCriteria,
    config: TrainConfig,
) -> CandidateResult:
    """Search one candidate over time-ordered folds of the train rows; judge it on validation."""
    estimator, space = candidate_spaces(config.random_state)[name]
    started = time.perf_counter()
    search = RandomizedSearchCV(
        build_pipeline(estimator),
        space,
        n_iter=min(config.search_iterations, len(ParameterGrid(space))),
        scoring="average_precision",
        cv=time_folds(train["as_of_date"], config.max_folds),
        n_jobs=config.n_jobs,
        random_state=config.random_state,
        refit=True,
    )
    search.fit(train[MODEL_FEATURES], train[LABEL_COLUMN])
    scores = search.best_estimator_.predict_proba(validation[MODEL_FEATURES])[:, 1]
    y = validation[LABEL_COLUMN].to_numpy()
    point = evaluate.choose_threshold(
        y, scores, criteria.performance.validation_precision, criteria.performance.min_recall
    )
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
) -> Selection:
    """Fit every candidate on the train rows only and choose on the validation rows."""
    evaluate.check_labels(train[LABEL_COLUMN].to_numpy(), "train period")
    evaluate.check_labels(validation[LABEL_COLUMN].to_numpy(), "validation period")
    return Selection(
        [search_candidate(name, train, validation, criteria, config) for name in config.candidates]
    )


@dataclass
class TrainResult:
    """What one training produced: the choice, its test figures and the baseline's, on the same rows."""

    data: TrainingData
    selection: Selection
    config: TrainConfig
    criteria: acceptance.AcceptanceCriteria
    test_metrics: evaluate.Metrics
    baseline_metrics: evaluate.Metrics | None
    test_scores: pd.DataFrame
    seconds: float = 0.0
    model_name: str | None = None
    model_version: str | None = None
    alias: str | None = None
    run_id: str | None = None

    @property
    def threshold(self) -> float:
        return self.selection.chosen.validation_point.threshold

    @property
    def meets_acceptance(self) -> bool:
        performance = self.criteria.performance
        return (
            self.test_metrics.precision >= performance.min_precision
            and self.test_metrics.recall >= performance.min_recall
        )


def score_test(selection: Selection, test: pd.DataFrame) -> tuple[evaluate.Metrics, pd.DataFrame]:
    """The chosen model's test figures at the threshold chosen on validation."""
    chosen = selection.chosen
    scores = chosen.pipeline.predict_proba(test[MODEL_FEATURES])[:, 1]
    frame = test[[*KEY_COLUMNS, LABEL_COLUMN]].assign(score=scores)
    return evaluate.metrics_at(
        frame[LABEL_COLUMN].to_numpy(), scores, chosen.validation_point.threshold
    ), frame


def train(
    settings: Settings | None = None,
    config: TrainConfig | None = None,
    criteria: acceptance.AcceptanceCriteria | None = None,
    alias: str | None = "challenger",
) -> TrainResult:
    """`custlabel train`: load, search, choose, test against the rule baseline, log, register, set the alias."""
    from custlabel import baseline, registry

    settings = settings or get_settings()
    config = config or TrainConfig()
    criteria = criteria or acceptance.load(settings=settings)
    started = time.perf_counter()
    data = load(settings, config)
    selection = select(data.train, data.validation, criteria, config)
    test_metrics, test_scores = score_test(selection, data.test)
    baseline_metrics, test_scores = baseline.evaluate_on(settings, test_scores)
    result = TrainResult(data, selection, config, criteria, test_metrics, baseline_metrics, test_scores)
    result.seconds = time.perf_counter() - started
    registry.log_training(settings, result, alias)
    return result


def config_dict(config: TrainConfig) -> dict:
    """The training configuration as plain values (for parameters and hashing)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()}


def summary_lines(result: TrainResult) -> list[str]:
    """What `custlabel train` prints."""
    plan, chosen, test = result.data.plan, result.selection.chosen, result.test_metrics
    lines = [
        f"split: train {plan.train_dates[0]}..{plan.train_dates[-1]} ({len(result.data.train)} rows), "
        f"validation {', '.join(map(str, plan.validation_dates))} ({len(result.data.validation)} rows), "
        f"test {plan.test_date} ({len(result.data.test)} rows), embargo {'on' if plan.embargo else 'off'}",
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
    verdict = "meets" if result.meets_acceptance else "does NOT meet"
    lines.append(
        f"acceptance: {verdict} precision >= {result.criteria.performance.min_precision} at recall >= {result.criteria.performance.min_recall}"
    )
    if result.model_version:
        alias = f", alias {result.alias}" if result.alias else ""
        lines.append(
            f"registered {result.model_name} version {result.model_version}{alias} (MLflow run {result.run_id}); "
            f"training took {result.seconds:.0f} s"
        )
    return lines
