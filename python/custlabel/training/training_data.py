"""Training data: the training_set mart (on the target's engine) read by time, split with a one-outcome-window gap, sampled, typed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd

from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.training.features import (
    CATEGORICAL_FEATURES,
    KEY_COLUMNS,
    LABEL_COLUMN,
    LOOKBACK_DAYS,
    MODEL_FEATURES,
    NUMERIC_FEATURES,
)
from custlabel.warehouse import engine_schemas
from custlabel.warehouse.engine_schemas import Schema

TABLE = "training_set"
TONIGHT = "customer_features_current"
CLEAN_SALES = "int_sales_validated"
# Splits that need a gap: fold fit -> held-out date, train -> validation, validation -> test.
GAPS_IN_A_SPLIT = 3


class TrainingDataError(CustlabelError):
    """The training set cannot support a time-ordered training."""


@dataclass(frozen=True)
class SplitPlan:
    """Which as_of_dates train, validate and test, and the gap kept between periods (one outcome window)."""

    train_dates: tuple[date, ...]
    validation_dates: tuple[date, ...]
    test_date: date
    gap_days: int

    def tags(self) -> dict[str, str]:
        return {
            "train_dates": f"{self.train_dates[0]}..{self.train_dates[-1]} ({len(self.train_dates)} dates)",
            "validation_dates": ",".join(str(d) for d in self.validation_dates),
            "test_date": str(self.test_date),
            "split_gap_days": str(self.gap_days),
        }


@dataclass(frozen=True)
class FeatureSet:
    """The features a training uses, and those the data cannot fill (name -> why), left out of the model."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    left_out: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def lines(self) -> list[str]:
        """One line per feature left out, saying why."""
        return [f"feature {name} left out of the model: {why}" for name, why in self.left_out.items()]


ALL_FEATURES = FeatureSet(tuple(NUMERIC_FEATURES), tuple(CATEGORICAL_FEATURES))


def _one_value(values: pd.Series) -> str | None:
    present = values.dropna()
    if present.empty:
        return "null on every training row"
    if present.nunique() == 1:
        where = "" if len(present) == len(values) else f" where not null ({len(present) / len(values):.0%} of rows)"
        value = present.iloc[0]
        shown = repr(value) if isinstance(value, str) else f"{float(value):g}"
        return f"one value ({shown}) on every training row{where}"
    return None


def usable_features(train: pd.DataFrame) -> FeatureSet:
    """The contract's features the train rows can fill: not null everywhere, more than one value.

    A categorical with one value in training (a first build's customer attributes are
    'unknown' before the first snapshot) would meet categories it never saw tonight:
    training/serving skew, so it is left out too.
    """
    left_out = {name: why for name in MODEL_FEATURES if (why := _one_value(train[name])) is not None}
    return FeatureSet(
        tuple(name for name in NUMERIC_FEATURES if name not in left_out),
        tuple(name for name in CATEGORICAL_FEATURES if name not in left_out),
        left_out,
    )


@dataclass(frozen=True)
class Population:
    """The eligible customers of one night: rows, bad rate (None tonight), share with a sale in the last 90 days."""

    as_of_date: date
    rows: int
    bad_rate: float | None
    active_share: float
    # days of sales history behind the night, capped at LOOKBACK_DAYS (None: unknown)
    history_days: int | None = None

    @property
    def truncated(self) -> bool:
        """Whether the features' lookback reaches back before the first sale in the data."""
        return self.history_days is not None and self.history_days < LOOKBACK_DAYS

    def line(self, role: str) -> str:
        bad = "bad rate unknown" if self.bad_rate is None else f"bad rate {self.bad_rate:.3f}"
        lookback = f", lookback {self.history_days} of {LOOKBACK_DAYS} days (truncated)" if self.truncated else ""
        return f"{role:<10} {self.as_of_date}: {self.rows:>9,} rows, {bad}, active {self.active_share:.0%}{lookback}"


@dataclass(frozen=True)
class NightCheck:
    """Which nights look like scoring nights: populations, truncated lookbacks and what training did about them."""

    populations: tuple[Population, ...]
    tonight: Population | None
    data_start: date | None
    # train nights left out for a truncated lookback, and the weights of those kept (1 when not listed)
    left_out: tuple[date, ...] = ()
    weights: dict[date, float] = field(default_factory=dict)

    @property
    def policy(self) -> str:
        """What training did with truncated nights, and why."""
        if self.left_out:
            return (
                f"{len(self.left_out)} train night(s) with a lookback truncated by the data's start ({self.data_start}) "
                "left out: their 365-day features undercount every customer, unlike tonight's"
            )
        if self.weights:
            return (
                f"{len(self.weights)} train night(s) with a truncated lookback kept, weighted by the share of the "
                f"{LOOKBACK_DAYS}-day lookback they have (the history is too short to leave them out and keep the gap)"
            )
        return "no train night has a truncated lookback"

    def tags(self) -> dict[str, str]:
        truncated = [str(p.as_of_date) for p in self.populations if p.truncated]
        return {
            "data_start": str(self.data_start),
            "truncated_nights": ",".join(truncated) or "none",
            "truncated_nights_policy": self.policy,
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
    nights: NightCheck | None = None

    def train_weights(self) -> np.ndarray | None:
        """Per train row, the weight of its night (None when every night weighs 1)."""
        if self.nights is None or not self.nights.weights:
            return None
        return self.train["as_of_date"].map(self.nights.weights).fillna(1.0).to_numpy(float)

    def refit_rows(self, cap: int, random_state: int = 0) -> tuple[pd.DataFrame, np.ndarray | None]:
        """Every matured night's rows for the refit, each night at most `cap` rows like the train nights, and their weights.

        Validation and test nights are cut to the train cap (stratified by is_bad), so no
        night weighs more than a train night. Where training weighted truncated nights, a
        truncated validation or test night is weighted alike (its share of the lookback).
        """
        held_out = pd.concat([self.validation, self.test], ignore_index=True)
        rows = pd.concat([self.train, _stratified_cap(held_out, cap, random_state)], ignore_index=True)
        if self.nights is None or not self.nights.weights:
            return rows, None
        shares = {p.as_of_date: max(p.history_days, 1) / LOOKBACK_DAYS for p in self.nights.populations if p.truncated}
        return rows, rows["as_of_date"].map(shares).fillna(1.0).to_numpy(float)


def _stratified_cap(frame: pd.DataFrame, cap: int, random_state: int) -> pd.DataFrame:
    """At most `cap` rows per as_of_date, keeping each night's bad share."""
    parts = []
    for _, night in frame.groupby("as_of_date"):
        share = min(1.0, cap / len(night))
        parts.append(night if share == 1.0 else night.groupby(LABEL_COLUMN).sample(frac=share, random_state=random_state))
    return pd.concat(parts, ignore_index=True) if parts else frame


def summary_query(source: Schema) -> str:
    """Rows, bad count, active count and latest window end per as_of_date of the training set."""
    return (
        f"select as_of_date, max(window_end) as window_end, count(*) as rows, sum({LABEL_COLUMN}) as bad,"
        " count(*) filter (where sales_count_90d > 0) as active"
        f" from {source.name(TABLE)} group by as_of_date order by as_of_date"
    )


def read_summary(source: Schema) -> pd.DataFrame:
    """The training set's rows per as_of_date (summary_query), its counts as integers on either engine."""
    summary = source.frame(summary_query(source))
    return summary.astype({"rows": "int64", "bad": "int64", "active": "int64"})


def _history_days(night: date, data_start: date | None) -> int | None:
    return None if data_start is None else max(0, min(LOOKBACK_DAYS, (night - data_start).days))


def populations(summary: pd.DataFrame, data_start: date | None) -> tuple[Population, ...]:
    """The population of each matured night of the summary."""
    return tuple(
        Population(
            night,
            int(row.rows),
            float(row.bad) / row.rows,
            float(row.active) / row.rows,
            _history_days(night, data_start),
        )
        for row in summary.itertuples()
        for night in [pd.Timestamp(row.as_of_date).date()]
    )


def check_nights(plan: SplitPlan, summary: pd.DataFrame, data_start: date | None, tonight: Population | None) -> tuple[SplitPlan, NightCheck]:
    """Flag nights whose lookback the data truncates; leave such train nights out when the rest can still train.

    Left out when the remaining train nights keep two one outcome window apart (the
    search's folds need it); otherwise kept, each weighted by the share of the lookback
    it has, since too short a history is better than none.
    """
    nights = populations(summary, data_start)
    truncated = {p.as_of_date: p.history_days for p in nights if p.truncated}
    train = [d for d in plan.train_dates if d not in truncated]
    check = NightCheck(nights, tonight, data_start)
    if len(train) == len(plan.train_dates):
        return plan, check
    if len(train) >= 2 and matured_by(train[0], train[-1], plan.gap_days):
        left_out = tuple(d for d in plan.train_dates if d in truncated)
        return replace(plan, train_dates=tuple(train)), replace(check, left_out=left_out)
    weights = {d: max(truncated[d], 1) / LOOKBACK_DAYS for d in plan.train_dates if d in truncated}
    return plan, replace(check, weights=weights)


def data_start(source: Schema) -> date | None:
    """The day of the first clean sale (None when the warehouse has none)."""
    if not source.exists(CLEAN_SALES):
        return None
    first = source.frame(f"select cast(min(sold_at) as date) as first_day from {source.name(CLEAN_SALES)}")["first_day"]
    return None if first.isna().all() else pd.Timestamp(first.iloc[0]).date()


def tonight_population(source: Schema, start: date | None) -> Population | None:
    """Tonight's eligible customers (customer_features_current), None when it is not built."""
    if not source.exists(TONIGHT):
        return None
    night, rows, active = source.frame(
        "select max(as_of_date) as night, count(*) as customers, count(*) filter (where sales_count_90d > 0) as active"
        f" from {source.name(TONIGHT)}"
    ).iloc[0]
    if not rows:
        return None
    night = pd.Timestamp(night).date()
    return Population(night, int(rows), None, active / rows, _history_days(night, start))


def matured_by(as_of_date: date, night: date, gap_days: int) -> bool:
    """Whether the outcome window of an as_of_date had ended by a later night (its label was known)."""
    return as_of_date + timedelta(days=gap_days) <= night


def _too_short(dates: list[date], gap_days: int, validation_dates: int) -> TrainingDataError:
    step = pd.Series(dates).diff().dropna().median()
    step_days = step.days if isinstance(step, timedelta) and step.days > 0 else 30
    span_needed = GAPS_IN_A_SPLIT * gap_days + (validation_dates - 1) * step_days
    dates_needed = math.ceil(span_needed / step_days) + 1
    months = math.ceil((span_needed + gap_days) / 30.4)
    have = f"{len(dates)} matured as_of_dates ({dates[0]}..{dates[-1]}, {(dates[-1] - dates[0]).days} days)" if dates else "no matured as_of_dates"
    return TrainingDataError(
        f"{TABLE} has {have}; a time-ordered split keeps one outcome window ({gap_days} days) between "
        "the fit and held-out dates of the search's folds, between train and validation, and between "
        f"validation and test, so it needs matured as_of_dates spanning at least {span_needed} days "
        f"(about {dates_needed} as_of_dates {step_days} days apart), i.e. about {months} months of history "
        f"counting the {gap_days} days the newest one takes to mature: generate or load a longer history"
    )


def time_split(summary: pd.DataFrame, validation_dates: int = 1) -> SplitPlan:
    """Split as_of_dates by time: train on older ones, validate on newer, test on the newest.

    A row is only used where its outcome window had ended by the as_of_date of the
    period it helps judge (train before validation, validation before test), as it
    would have been in production; the train dates also leave room for the search's
    folds to keep that gap. A history too short for it is an error, never a split
    without the gap.
    """
    frame = summary.sort_values("as_of_date")
    dates = [pd.Timestamp(d).date() for d in frame["as_of_date"]]
    ends = [pd.Timestamp(d).date() for d in frame["window_end"]]
    gap_days = max((end - day).days for day, end in zip(dates, ends, strict=True)) if dates else 0
    if len(dates) < 2:
        raise _too_short(dates, gap_days, validation_dates)
    test = dates[-1]
    validation = [d for d in dates[:-1] if matured_by(d, test, gap_days)][-validation_dates:]
    train = [d for d in dates if validation and d < validation[0] and matured_by(d, validation[0], gap_days)]
    # The search's folds need two train dates one outcome window apart (the first fits, the last is held out).
    if len(validation) < validation_dates or len(train) < 2 or not matured_by(train[0], train[-1], gap_days):
        raise _too_short(dates, gap_days, validation_dates)
    return SplitPlan(tuple(train), tuple(validation), test, gap_days)


def _sample_query(source: Schema, dates: int) -> str:
    # A cheap Bernoulli pre-filter on the key's hash keeps about 1.5 * cap rows per date, so the exact
    # stratified cut (row_number per as_of_date and class) sorts thousands, not millions. The hash's first
    # 8 hex digits against the date's share of 16^8, also written in 8 hex digits, compare as numbers do.
    columns = ", ".join([*KEY_COLUMNS, *MODEL_FEATURES, LABEL_COLUMN])
    sample_key = "md5(concat(customer_id, as_of_date))"
    date_list = ", ".join(f":date_{i}" for i in range(dates))
    below = " ".join(f"when :date_{i} then :below_{i}" for i in range(dates))
    return (
        f"with candidates as ("
        f" select {columns}, {sample_key} as sample_key from {source.name(TABLE)}"
        f" where as_of_date in ({date_list}) and substr({sample_key}, 1, 8) < case as_of_date {below} end"
        "), ranked as ("
        " select *,"
        f"  row_number() over (partition by as_of_date, {LABEL_COLUMN} order by sample_key) as sample_rank,"
        f"  count(*) over (partition by as_of_date, {LABEL_COLUMN}) as stratum_rows,"
        "  count(*) over (partition by as_of_date) as date_rows"
        " from candidates"
        f") select {columns} from ranked"
        # rank <= ceil(stratum_rows * min(1, cap / date_rows)) in integers: exact, and the same on both engines.
        " where (sample_rank - 1) * date_rows < stratum_rows * :cap"
        " order by as_of_date, customer_id"
    )


def _hash_below(share: float) -> str:
    """The 8 hex digits that a share of the md5 prefixes fall below ("g" above every prefix: keep all)."""
    return "g" if share >= 1 else f"{math.ceil(share * 4294967296):08x}"


def read_rows(source: Schema, summary: pd.DataFrame, dates: tuple[date, ...], cap: int) -> pd.DataFrame:
    """Rows of the training set for some as_of_dates, at most `cap` per date, stratified by is_bad.

    Args:
        summary: rows per as_of_date (from summary_query), to size the pre-filter.
    """
    rows = dict(zip(pd.to_datetime(summary["as_of_date"]).dt.date, summary["rows"], strict=True))
    shares = [min(1.0, 1.5 * cap / rows[d]) if rows[d] > cap else 1.0 for d in dates]
    params = {
        "cap": cap,
        **{f"date_{i}": night for i, night in enumerate(dates)},
        **{f"below_{i}": _hash_below(share) for i, share in enumerate(shares)},
    }
    return normalize(source.frame(_sample_query(source, len(dates)), params))


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Types the pipeline and the MLflow signature expect: float features, string segment, int label."""
    frame = frame.copy()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    frame[NUMERIC_FEATURES] = frame[NUMERIC_FEATURES].astype("float64")
    frame[CATEGORICAL_FEATURES] = frame[CATEGORICAL_FEATURES].astype("str")
    if LABEL_COLUMN in frame:
        frame[LABEL_COLUMN] = frame[LABEL_COLUMN].astype("int64")
    return frame


def load(
    settings: Settings, validation_dates: int = 1, train_rows_per_date: int = 10_000, eval_rows_per_date: int = 200_000
) -> TrainingData:
    """Read the training set through its contracted mart on the target's engine, split by time, sampled per as_of_date.

    Args:
        train_rows_per_date, eval_rows_per_date: sampling caps per as_of_date (stratified by is_bad,
            chosen deterministically by the key's hash) for the train and the validation/test rows.
    """
    source = engine_schemas.of_target(settings, settings.schema)
    summary = read_summary(source)
    if summary.empty:
        raise TrainingDataError(
            f"{settings.schema}.{TABLE} is empty: run `custlabel dbt build` on a history with matured outcomes"
        )
    if summary["bad"].sum() in (0, summary["rows"].sum()):
        raise TrainingDataError(
            f"{settings.schema}.{TABLE} has only one class (is_bad = {int(summary['bad'].iloc[0] > 0)} on every row)"
        )
    start = data_start(source)
    plan, nights = check_nights(time_split(summary, validation_dates), summary, start, tonight_population(source, start))
    return TrainingData(
        plan=plan,
        train=read_rows(source, summary, plan.train_dates, train_rows_per_date),
        validation=read_rows(source, summary, plan.validation_dates, eval_rows_per_date),
        test=read_rows(source, summary, (plan.test_date,), eval_rows_per_date),
        summary=summary,
        sampling=(
            f"at most {train_rows_per_date} train rows and {eval_rows_per_date} validation/test rows "
            "per as_of_date, stratified by is_bad (same class shares), chosen deterministically by md5(concat(customer_id, as_of_date))"
        ),
        nights=nights,
    )


def split_frame(frame: pd.DataFrame, plan: SplitPlan) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The train, validation and test rows of an in-memory training set."""
    dates = frame["as_of_date"]
    return (
        frame[dates.isin(plan.train_dates)],
        frame[dates.isin(plan.validation_dates)],
        frame[dates == plan.test_date],
    )
