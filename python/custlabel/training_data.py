"""Training data: the training_set mart read by time, split with a one-outcome-window gap, sampled, typed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from psycopg import sql

from custlabel import db
from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.features import CATEGORICAL_FEATURES, KEY_COLUMNS, LABEL_COLUMN, MODEL_FEATURES, NUMERIC_FEATURES

TABLE = "training_set"
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


@dataclass
class TrainingData:
    """The sampled frames of one time-ordered split."""

    plan: SplitPlan
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    summary: pd.DataFrame
    sampling: str


def summary_query(settings: Settings) -> sql.Composed:
    """Rows, bad count and latest window end per as_of_date of the training set."""
    return sql.SQL(
        "select as_of_date, max(window_end) as window_end, count(*) as rows, sum({label}) as bad "
        "from {table} group by as_of_date order by as_of_date"
    ).format(label=sql.Identifier(LABEL_COLUMN), table=sql.Identifier(settings.schema, TABLE))


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


def load(
    settings: Settings, validation_dates: int = 1, train_rows_per_date: int = 10_000, eval_rows_per_date: int = 200_000
) -> TrainingData:
    """Read the training set through its contracted mart, split by time, sampled per as_of_date.

    Args:
        train_rows_per_date, eval_rows_per_date: sampling caps per as_of_date (stratified by is_bad,
            chosen deterministically by the key's hash) for the train and the validation/test rows.
    """
    summary = db.read_frame(summary_query(settings).as_string(), settings=settings)
    if summary.empty:
        raise TrainingDataError(
            f"{settings.schema}.{TABLE} is empty: run `custlabel dbt build` on a history with matured outcomes"
        )
    if summary["bad"].sum() in (0, summary["rows"].sum()):
        raise TrainingDataError(
            f"{settings.schema}.{TABLE} has only one class (is_bad = {int(summary['bad'].iloc[0] > 0)} on every row)"
        )
    plan = time_split(summary, validation_dates)
    return TrainingData(
        plan=plan,
        train=read_rows(settings, summary, plan.train_dates, train_rows_per_date),
        validation=read_rows(settings, summary, plan.validation_dates, eval_rows_per_date),
        test=read_rows(settings, summary, (plan.test_date,), eval_rows_per_date),
        summary=summary,
        sampling=(
            f"at most {train_rows_per_date} train rows and {eval_rows_per_date} validation/test rows "
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
