"""Demo master data: customers and sales driven by hidden, drifting traits.

Each customer has three hidden traits that drift month by month (a random walk in
log or logit space, plus a population-wide drift): engagement (purchases a day),
payment reliability (chance an invoice is never paid; unreliable payers also often
pay late, and take longer to pay when they do pay on time) and return propensity.
On a random day (a hazard that is higher when payment risk is high) a customer
begins to leave, and it shows the way it does in real master data:

- they stop paying: invoices still open that day, and those of every later sale,
  are never paid;
- dissatisfied, they return most purchases of the previous weeks within days
  (`LEAVING_RETURN_SHARE` of those of the last `LEAVING_LOOKBACK_DAYS`), and the same
  share of any later purchase;
- their purchases fade, halving every month, until they are churned and only buy
  now and then.

A customer is bad in an outcome window (T, T+W] when they bring no paid revenue in it
or leave an invoice due in it unpaid when it ends. The probability of that given the
hidden state at the night T (the traits, and whether the customer has begun to leave)
follows in closed form and is written to `demo_truth.bad_probability`, which only
benchmarks read: a customer who has begun to leave pays nothing any more, so is bad
for sure; for the others, the day they may begin to leave inside the window is
integrated out with their hazard, and payment delays (on time, late, never) are
integrated exactly. Sales of the 30 days before T count as unknown like those of the
window (their invoices fall due in it), and random-walk steps inside the window are
ignored (mean zero, small over a window).

Real master data is messy, so a small documented share of rows is made messy on
purpose (see `MESS_RATES`): the dbt staging models must fix, quarantine or reject
each kind.
"""

from __future__ import annotations

import io
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from custlabel import contract, db
from custlabel.config import Settings, get_settings

DAY = 86_400.0
PAYMENT_TERMS_DAYS = 30
BASE_DEFAULT_PROBABILITY = 0.015
ON_TIME_DELAY_SHAPE = 5  # an on-time payer's delay is Gamma(shape, scale) days
ON_TIME_DELAY_MEAN_DAYS = 14.0  # at the base default probability
ON_TIME_DELAY_RISK_SLOPE = 0.7  # the delay's log scale per unit of logit default probability
LATE_PAYMENT_DAYS = (PAYMENT_TERMS_DAYS + 1.0, PAYMENT_TERMS_DAYS + 40.0)  # a late payment's delay is uniform in it
BLOCK_CUSTOMERS = 50_000
CHURNED_RATE_FACTOR = 0.02  # a churned customer still buys now and then
LEAVING_HALF_LIFE_DAYS = 30.0  # a leaving customer's purchases halve every month until churned
LEAVING_LOOKBACK_DAYS = 45.0  # purchases this recent when a customer begins to leave may be returned
LEAVING_RETURN_SHARE = 0.8  # share of those (and of later purchases) a leaving customer returns
LEAVING_RETURN_DELAY_DAYS = 10.0  # they return them within this many days of beginning to leave
DAYS_PER_MONTH = 365.25 / 12
TRUTH_STEPS = 9  # quadrature points over the day a customer may begin to leave inside the window
GENERATOR_PROCESSES = 2

COUNTRIES = ["DE", "FR", "ES", "IT", "NL", "PL"]
COUNTRY_WEIGHTS = [0.3, 0.2, 0.15, 0.15, 0.1, 0.1]
SEGMENTS = ["consumer", "small_business", "enterprise"]
SEGMENT_WEIGHTS = [0.7, 0.22, 0.08]
GENDERS = ["F", "M", "X"]
GENDER_WEIGHTS = [0.49, 0.48, 0.03]
CHANNELS = np.array(["web", "app", "store", "phone"])

# Share of rows made messy on purpose, by kind (per sale row unless said otherwise).
MESS_RATES = {
    "duplicate_sale_row": 0.005,
    "status_spelling_variant": 0.002,  # ' Returned', 'COMPLETED': staging fixes these
    "unknown_status": 0.0005,
    "negative_amount": 0.0005,
    "absurd_amount": 0.0002,
    "sale_before_customer_created": 0.0005,
    "future_sale": 0.0002,
    "unknown_customer": 0.0002,
    "missing_required": 0.0002,
    "late_arriving": 0.02,  # recorded days after the sale: valid, handled point-in-time
    "null_channel": 0.02,
    "null_customer_attribute": 0.02,  # per customer column
    "duplicate_customer_row": 0.002,  # per customer
}

CUSTOMER_COLUMNS = [
    "customer_id", "created_at", "updated_at", "country", "segment", "birth_date", "gender",
]
SALE_COLUMNS = [
    "sale_id", "customer_id", "sold_at", "quantity", "amount", "status",
    "status_changed_at", "due_at", "paid_at", "channel", "recorded_at", "updated_at",
]

# The master_data tables come from the contract (custlabel.contract) first.
DDL = """
create schema if not exists demo_truth;
create table if not exists demo_truth.bad_probability (
    customer_id text, as_of_date date, p_bad double precision
);
create index if not exists bad_probability_as_of on demo_truth.bad_probability (as_of_date, customer_id);
truncate master_data.customers, master_data.sales, demo_truth.bad_probability;
"""


@dataclass(frozen=True)
class DemoSpec:
    customers: int
    days: int
    seed: int
    end_date: date
    window_days: int = 90

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days - 1)


@dataclass
class Block:
    customers: pd.DataFrame
    sales: pd.DataFrame
    truth: pd.DataFrame


def month_starts(start: date, end: date) -> list[date]:
    """First day of every month overlapping [start, end]."""
    months, current = [], date(start.year, start.month, 1)
    while current <= end:
        months.append(current)
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return months


def truth_dates(spec: DemoSpec) -> list[date]:
    """As-of dates whose outcome window has matured inside the generated history."""
    candidates = month_starts(spec.start_date, spec.end_date)[1:] + [spec.end_date]
    last = spec.end_date - timedelta(days=spec.window_days)
    return sorted({d for d in candidates if d <= last})


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


class _Timeline:
    """Month boundaries of the history, in days since its first day."""

    def __init__(self, spec: DemoSpec):
        starts = month_starts(spec.start_date, spec.end_date)
        self.origin = datetime.combine(spec.start_date, datetime.min.time(), timezone.utc)
        edges = [max((m - spec.start_date).days, 0) for m in starts] + [spec.days]
        self.edges = np.array(edges, dtype=float)
        self.months = len(starts)


@dataclass(frozen=True)
class _Traits:
    """Hidden traits: per customer and month (n, months), or per customer (n,)."""

    rate: np.ndarray  # purchases a day
    p_default: np.ndarray  # an invoice is never paid
    p_return: np.ndarray
    p_cancel: np.ndarray
    online: np.ndarray  # (n,) share of purchases online
    leave_hazard: np.ndarray  # (n,) per day, of beginning to leave
    leave_day: np.ndarray  # (n,) the day each customer begins to leave


@dataclass(frozen=True)
class _Payment:
    """How customers pay in one month: see payment_delays."""

    p_default: np.ndarray
    late_share: np.ndarray
    delay_scale: np.ndarray

    @classmethod
    def of(cls, p_default: np.ndarray) -> _Payment:
        return cls(p_default, late_share(p_default), on_time_delay_scale(p_default))


def late_share(p_default: np.ndarray) -> np.ndarray:
    """Share of a customer's paid invoices paid late: unreliable payers often pay late."""
    return np.minimum(2 * p_default, 1.0)


def on_time_delay_scale(p_default: np.ndarray) -> np.ndarray:
    """Gamma scale (days) of an on-time payment's delay: customers at risk of not paying pay
    later even when they pay on time, and slow down as their risk rises."""
    excess_risk = np.log(p_default / (1 - p_default)) - _logit(BASE_DEFAULT_PROBABILITY)
    return ON_TIME_DELAY_MEAN_DAYS / ON_TIME_DELAY_SHAPE * np.exp(ON_TIME_DELAY_RISK_SLOPE * excess_risk)


def payment_delays(rng: np.random.Generator, p_default: np.ndarray) -> np.ndarray:
    """Days from sale to payment of invoices that will be paid: late (uniform in LATE_PAYMENT_DAYS)
    with probability late_share, else on time (Gamma(ON_TIME_DELAY_SHAPE, on_time_delay_scale))."""
    late = rng.random(len(p_default)) < late_share(p_default)
    on_time = rng.gamma(ON_TIME_DELAY_SHAPE, on_time_delay_scale(p_default))
    return np.where(late, rng.uniform(*LATE_PAYMENT_DAYS, len(p_default)), on_time)


def _traits(rng: np.random.Generator, n: int, timeline: _Timeline, segment: np.ndarray, created_day: np.ndarray):
    months = timeline.months
    segment_boost = np.select([segment == "enterprise", segment == "small_business"], [0.5, 0.2], 0.0)
    risk = rng.normal(0, 1, n)  # latent riskiness shared by payment, returns and churn
    log_rate = np.log(1 / 25) + segment_boost + rng.normal(0, 0.5, n) - 0.25 * risk
    logit_default = _logit(BASE_DEFAULT_PROBABILITY) + 0.9 * risk + rng.normal(0, 0.6, n)
    logit_return = _logit(0.05) + 0.5 * risk + rng.normal(0, 0.6, n)
    logit_cancel = _logit(0.03) + rng.normal(0, 0.4, n)

    steps = rng.normal(0, 1, (n, months, 3)) * np.array([0.12, 0.2, 0.15])
    drift = np.arange(months) / 12.0  # population drift: returns and defaults rise over time
    leave_hazard = -np.log1p(-_sigmoid(-4.4 + 0.9 * risk)) / DAYS_PER_MONTH
    leave_day = np.maximum(created_day, 0) + rng.exponential(1 / leave_hazard)

    return _Traits(
        rate=np.exp(log_rate[:, None] + np.cumsum(steps[:, :, 0], axis=1)),
        p_default=_sigmoid(logit_default[:, None] + np.cumsum(steps[:, :, 1], axis=1) + 0.25 * drift),
        p_return=_sigmoid(logit_return[:, None] + np.cumsum(steps[:, :, 2], axis=1) + 0.3 * drift),
        p_cancel=np.repeat(_sigmoid(logit_cancel)[:, None], months, axis=1),
        online=_sigmoid(rng.normal(0, 1.2, n) + 0.4 * risk),
        leave_hazard=leave_hazard,
        leave_day=leave_day,
    )


def _engagement(days_leaving: np.ndarray) -> np.ndarray:
    """Share of a customer's purchases still made this many days after they began to leave."""
    return np.maximum(np.exp2(-np.maximum(days_leaving, 0) / LEAVING_HALF_LIFE_DAYS), CHURNED_RATE_FACTOR)


def _engaged_days(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Integral of _engagement over days since beginning to leave in [start, end]."""
    half_life = LEAVING_HALF_LIFE_DAYS
    churned_from = half_life * np.log2(1 / CHURNED_RATE_FACTOR)
    before = np.minimum(end, 0) - np.minimum(start, 0)
    a, b = np.clip(start, 0, churned_from), np.clip(end, 0, churned_from)
    fading = half_life / np.log(2) * (np.exp2(-a / half_life) - np.exp2(-b / half_life))
    churned = CHURNED_RATE_FACTOR * (np.maximum(end, churned_from) - np.maximum(start, churned_from))
    return before + fading + churned


def _active_spans(created_day: np.ndarray, timeline: _Timeline) -> tuple[np.ndarray, np.ndarray]:
    """Start and length (days) of each customer's existence inside each month."""
    lo = np.maximum(timeline.edges[None, :-1], created_day[:, None])
    hi = np.broadcast_to(timeline.edges[None, 1:], lo.shape)
    return lo, np.clip(hi - lo, 0, None)


def _p_bad(good_expected: np.ndarray, unpaid_expected: np.ndarray) -> np.ndarray:
    """P(no paid sale, or at least one unpaid invoice) for Poisson counts with these means."""
    return 1 - (1 - np.exp(-good_expected)) * np.exp(-unpaid_expected)


def _gamma_cdf(shape: int, u: np.ndarray) -> np.ndarray:
    """CDF at u of a Gamma(shape, 1) for a whole-number shape (an Erlang distribution)."""
    term = np.ones_like(u)
    total = np.ones_like(u)
    for j in range(1, shape):
        term = term * u / j
        total += term
    return 1 - np.exp(-u) * total


def _paid_within_integral(x, payment: _Payment) -> np.ndarray:
    """Integral over [0, x] of P(an invoice that will be paid is paid within v days of the sale), dv."""
    x = np.maximum(x, 0.0)
    # For a Gamma(k, scale) delay with CDF F_k: the integral of F_k over [0, x] is x F_k(x) - k scale F_(k+1)(x).
    k, u = ON_TIME_DELAY_SHAPE, x / payment.delay_scale
    on_time = x * _gamma_cdf(k, u) - k * payment.delay_scale * _gamma_cdf(k + 1, u)
    lo, hi = LATE_PAYMENT_DAYS
    late = np.where(x <= lo, 0.0, np.where(x <= hi, (x - lo) ** 2 / (2 * (hi - lo)), (hi - lo) / 2 + x - hi))
    return (1 - payment.late_share) * on_time + payment.late_share * late


def _open_at(lo: float, hi: float, payment: _Payment) -> np.ndarray:
    """Integral over v in [lo, hi] (days from a sale) of P(its invoice is unpaid v days after the sale)."""
    if hi <= lo:
        return np.zeros_like(payment.p_default)
    paid = _paid_within_integral(hi, payment) - _paid_within_integral(lo, payment)
    return (hi - lo) - (1 - payment.p_default) * paid


def _p_bad_staying(w: int, paying, payment: _Payment) -> np.ndarray:
    """P(bad in the window) for a customer who does not begin to leave in it.

    Good: sales in the window paid before it ends. Unpaid: invoices due in the window (sales
    in (-terms, w - terms]) not paid when it ends."""
    good = paying * (1 - payment.p_default) * _paid_within_integral(w, payment)
    unpaid = paying * _open_at(PAYMENT_TERMS_DAYS, w + PAYMENT_TERMS_DAYS, payment)
    return _p_bad(good, unpaid)


def _p_bad_leaving_at(s: float, w: int, paying, payment: _Payment) -> np.ndarray:
    """P(bad in the window) for a customer who begins to leave s days into it (0 < s < w).

    Good: sales before the onset paid before it and not returned then. Unpaid: invoices due in
    the window (sales in (-terms, w - terms]) still open at the onset and not returned, and every
    later sale due in the window that is not returned."""
    lookback, keep = LEAVING_LOOKBACK_DAYS, 1 - LEAVING_RETURN_SHARE
    # v: days from a sale to the onset; sales with v < lookback are returned with LEAVING_RETURN_SHARE
    paid_by_onset = _paid_within_integral(s, payment) - LEAVING_RETURN_SHARE * _paid_within_integral(
        min(s, lookback), payment
    )
    good = paying * (1 - payment.p_default) * paid_by_onset
    a, b = max(0.0, s - (w - PAYMENT_TERMS_DAYS)), s + PAYMENT_TERMS_DAYS
    open_recent = _open_at(a, min(b, lookback), payment)
    open_older = _open_at(max(a, lookback), b, payment)
    after = max(w - PAYMENT_TERMS_DAYS - s, 0.0)
    later = float(_engaged_days(np.float64(0.0), np.float64(after)))
    unpaid = paying * (keep * open_recent + open_older + keep * later)
    return _p_bad(good, unpaid)


def _truth(spec: DemoSpec, ids, timeline: _Timeline, created_day, traits: _Traits) -> pd.DataFrame:
    """P(bad) per customer and matured as-of date, given the hidden state known at that night.

    The state is the month's traits at the night and, for a customer who has begun to
    leave, the day they began: such a customer pays nothing any more, so is bad for sure.
    What happens after the night is integrated out: a customer who has not begun to leave
    may begin on any day of the window, with their hazard, and then stops paying. Sales of
    the 30 days before the night count as unknown, like those of the window (their invoices
    fall due in it). Random-walk steps inside the window are ignored (mean zero, small
    over a window).
    """
    paying = traits.rate * (1 - traits.p_cancel) * (1 - traits.p_return)
    hazard = traits.leave_hazard
    w = spec.window_days
    edges = np.linspace(0, w, TRUTH_STEPS + 1)
    starts = (edges[:-1] + edges[1:]) / 2
    start_weights = -np.diff(np.exp(-np.outer(hazard, edges)), axis=1)  # P(begins to leave in each step)
    frames = []
    for as_of in truth_dates(spec):
        day = (as_of - spec.start_date).days
        month = int(np.searchsorted(timeline.edges, day, side="right") - 1)
        payment = _Payment.of(traits.p_default[:, month])
        p_bad = np.exp(-hazard * w) * _p_bad_staying(w, paying[:, month], payment)
        for start, weight in zip(starts, start_weights.T, strict=True):
            p_bad += weight * _p_bad_leaving_at(start, w, paying[:, month], payment)
        p_bad = np.where(traits.leave_day < day, 1.0, p_bad)
        exists = created_day < day + 1
        frames.append(pd.DataFrame({"customer_id": ids[exists], "as_of_date": as_of, "p_bad": p_bad[exists]}))
    if not frames:
        return pd.DataFrame(columns=["customer_id", "as_of_date", "p_bad"])
    return pd.concat(frames, ignore_index=True)


def _customers(rng, spec: DemoSpec, first: int, n: int, timeline: _Timeline) -> tuple[pd.DataFrame, np.ndarray]:
    ids = np.char.add("C", np.char.zfill(np.arange(first, first + n).astype(str), 8))
    # 60% existed before the history starts, the rest join during it.
    before = rng.random(n) < 0.6
    created_day = np.where(before, -rng.uniform(0, 3 * 365, n), rng.uniform(0, spec.days, n))
    created_at = _stamp(timeline, created_day)
    age_days = rng.uniform(18 * 365.25, 85 * 365.25, n)
    birth = (pd.Timestamp(spec.end_date) - pd.to_timedelta(age_days, unit="D")).normalize()
    frame = pd.DataFrame({
        "customer_id": ids,
        "created_at": created_at,
        "updated_at": created_at.copy(),  # a copy: pandas 3.1 can write through shared columns
        "country": rng.choice(COUNTRIES, n, p=COUNTRY_WEIGHTS),
        "segment": rng.choice(SEGMENTS, n, p=SEGMENT_WEIGHTS),
        "birth_date": birth.date,
        "gender": rng.choice(GENDERS, n, p=GENDER_WEIGHTS),
    })
    for column in ["country", "segment", "birth_date", "gender"]:
        frame[column] = frame[column].where(rng.random(n) >= MESS_RATES["null_customer_attribute"], None)
    return frame, created_day


def _stamp(timeline: _Timeline, days: np.ndarray) -> pd.Series:
    """Timestamps (whole seconds, UTC) for day offsets from the start of history."""
    seconds = pd.to_timedelta(np.round(np.asarray(days) * DAY), unit="s")
    return pd.Series(timeline.origin + seconds).astype("datetime64[us, UTC]")


def _sales(rng, spec: DemoSpec, customers, created_day, timeline, traits: _Traits, spans) -> pd.DataFrame:
    leave_day = traits.leave_day
    span_start, span_len = spans
    counts = rng.poisson(traits.rate * span_len)
    cust = np.repeat(np.arange(len(customers)), counts.sum(axis=1))
    flat = np.repeat(np.arange(counts.size), counts.ravel())
    day = span_start.ravel()[flat] + rng.random(len(flat)) * span_len.ravel()[flat]
    # Thinning: a leaving customer makes a fading share of the purchases they would have made.
    kept = rng.random(len(flat)) < _engagement(day - leave_day[cust])
    cust, flat, day = cust[kept], flat[kept], day[kept]
    n_sales = len(flat)
    end_day = float(spec.days)

    quantity = 1 + rng.poisson(1.2, n_sales)
    unit_price = np.exp(rng.normal(3.2, 0.7, n_sales))
    amount = np.round(quantity * unit_price, 2)
    channel = np.where(
        rng.random(n_sales) < traits.online[cust], CHANNELS[rng.integers(0, 2, n_sales)],
        CHANNELS[2 + rng.integers(0, 2, n_sales)],
    ).astype(object)

    p_cancel, p_return = traits.p_cancel.ravel()[flat], traits.p_return.ravel()[flat]
    p_default = traits.p_default.ravel()[flat]
    u = rng.random(n_sales)
    cancelled = u < p_cancel
    returned = ~cancelled & (u < p_cancel + p_return)
    change_day = np.where(cancelled, day + rng.uniform(0, 2, n_sales), day + rng.uniform(3, 45, n_sales))

    defaults = ~cancelled & ~returned & (rng.random(n_sales) < p_default)
    pay_day = day + payment_delays(rng, p_default)
    # A customer who begins to leave stops paying: invoices still open then, and those of later
    # sales, are never paid. They return most of their recent purchases within days of
    # beginning to leave, and as large a share of any later purchase.
    leaving_on = leave_day[cust]
    since = day - leaving_on
    kept_status = ~cancelled & ~returned
    leave_returned = (
        kept_status & (since > -LEAVING_LOOKBACK_DAYS) & (rng.random(n_sales) < LEAVING_RETURN_SHARE)
    )
    leave_change_day = np.where(
        since < 0,
        leaving_on + rng.uniform(0, LEAVING_RETURN_DELAY_DAYS, n_sales),
        day + rng.uniform(3, 45, n_sales),
    )
    returned |= leave_returned
    change_day = np.where(leave_returned, leave_change_day, change_day)
    changed = (cancelled | returned) & (change_day < end_day)
    status = np.where(changed & cancelled, "cancelled", np.where(changed & returned, "returned", "completed"))
    paid = ~cancelled & ~defaults & (pay_day < end_day) & (pay_day < leaving_on)
    record_delay = np.where(rng.random(n_sales) < MESS_RATES["late_arriving"], rng.uniform(1, 10, n_sales), 0.0)
    arrived = day + record_delay < end_day

    status_changed = _stamp(timeline, change_day).where(changed)
    paid_at = _stamp(timeline, pay_day).where(paid)
    recorded = _stamp(timeline, day + record_delay).where(record_delay > 0)
    updated_day = np.maximum.reduce([
        day + record_delay,
        np.where(changed, change_day, 0.0),
        np.where(paid, pay_day, 0.0),
    ])
    owner = pd.array(customers["customer_id"].to_numpy()[cust], dtype="str")
    due = (_stamp(timeline, day).dt.normalize() + pd.Timedelta(days=PAYMENT_TERMS_DAYS)).dt.date
    sales = pd.DataFrame({
        "sale_id": pd.Series(owner).str.cat(pd.Series(np.arange(n_sales)).astype(str), sep="-"),
        "customer_id": owner,
        "sold_at": _stamp(timeline, day),
        "quantity": quantity,
        "amount": amount,
        "status": status,
        "status_changed_at": status_changed,
        "due_at": pd.Series(due).where(~cancelled),
        "paid_at": paid_at,
        "channel": channel,
        "recorded_at": recorded,
        "updated_at": _stamp(timeline, updated_day),
    })
    sales = sales[arrived].reset_index(drop=True)
    return _make_messy(rng, sales, customers, created_day, timeline)


def _pick(rng, n: int, kind: str) -> np.ndarray:
    return rng.random(n) < MESS_RATES[kind]


def _make_messy(rng, sales: pd.DataFrame, customers, created_day, timeline) -> pd.DataFrame:
    """Inject the documented share of each kind of bad master data."""
    n = len(sales)
    sales["channel"] = sales["channel"].where(~_pick(rng, n, "null_channel"), None)
    variants = _pick(rng, n, "status_spelling_variant")
    sales.loc[variants, "status"] = " " + sales.loc[variants, "status"].str.upper()
    sales.loc[_pick(rng, n, "unknown_status"), "status"] = "on_hold"
    sales.loc[_pick(rng, n, "negative_amount"), "amount"] *= -1
    sales.loc[_pick(rng, n, "absurd_amount"), "amount"] = 9_999_999.0
    sales.loc[_pick(rng, n, "unknown_customer"), "customer_id"] = "C-UNKNOWN"
    sales.loc[_pick(rng, n, "missing_required"), "amount"] = np.nan

    early = _pick(rng, n, "sale_before_customer_created")
    created = customers.set_index("customer_id")["created_at"]
    owner_created = sales.loc[early, "customer_id"].map(created)
    sales.loc[early, "sold_at"] = owner_created - pd.Timedelta(days=20)

    future = _pick(rng, n, "future_sale")
    sales.loc[future, "sold_at"] = sales.loc[future, "updated_at"] + pd.Timedelta(days=400)

    duplicates = sales[_pick(rng, n, "duplicate_sale_row")]
    return pd.concat([sales, duplicates], ignore_index=True)


def generate_block(spec: DemoSpec, block_index: int, first: int, n: int) -> Block:
    """Customers, sales and truth for customers [first, first + n): deterministic per block."""
    rng = np.random.default_rng([spec.seed, block_index])
    timeline = _Timeline(spec)
    customers, created_day = _customers(rng, spec, first, n, timeline)
    segment = customers["segment"].fillna("consumer").to_numpy()
    traits = _traits(rng, n, timeline, segment, created_day)
    spans = _active_spans(created_day, timeline)
    sales = _sales(rng, spec, customers, created_day, timeline, traits, spans)
    truth = _truth(spec, customers["customer_id"].to_numpy(), timeline, created_day, traits)
    _change_segments(rng, customers, spec, timeline)
    duplicated = customers[_pick(rng, n, "duplicate_customer_row")]
    return Block(pd.concat([customers, duplicated], ignore_index=True), sales, truth)


def _change_segments(rng, customers: pd.DataFrame, spec: DemoSpec, timeline: _Timeline) -> None:
    """A few customers were re-segmented lately: the edit shows in updated_at only."""
    moved = rng.random(len(customers)) < 0.02
    when = _stamp(timeline, rng.uniform(spec.days - 60, spec.days - 1, moved.sum()))
    when.index = customers.index[moved]
    later = when > customers.loc[moved, "created_at"]
    target = later[later].index
    customers.loc[target, "segment"] = rng.choice(SEGMENTS, len(target))
    customers.loc[target, "updated_at"] = when[target]


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV for COPY; timestamps written as naive UTC (formatting them with a zone is ten times slower)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            table = table.set_column(index, field.name, table.column(index).cast(pa.timestamp("s")))
    buffer = io.BytesIO()
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    pacsv.write_csv(table, buffer, options)
    return buffer.getvalue()


def _copy(conn, table: str, columns: list[str], payload: bytes) -> None:
    with conn.cursor().copy(f"copy {table} ({', '.join(columns)}) from stdin with (format csv)") as copy:
        copy.write(payload)


def _drop_derived_schemas(conn) -> None:
    """New master data is a new world: snapshots and tables built from the old one would mix them."""
    schemas = conn.execute(
        "select nspname from pg_namespace where nspname like 'analytics%' or nspname like 'custlabel_benchmark%'"
    ).fetchall()
    for (schema,) in schemas:
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))


def _block_payload(spec: DemoSpec, index: int) -> tuple[int, int, bytes, bytes, bytes]:
    first = index * BLOCK_CUSTOMERS
    block = generate_block(spec, index, first, min(BLOCK_CUSTOMERS, spec.customers - first))
    return (
        len(block.customers),
        len(block.sales),
        _csv_bytes(block.customers[CUSTOMER_COLUMNS]),
        _csv_bytes(block.sales[SALE_COLUMNS]),
        _csv_bytes(block.truth),
    )


def _payloads(spec: DemoSpec) -> Iterator[tuple[int, int, bytes, bytes, bytes]]:
    """CSV payloads of the blocks in order, generated by worker processes while the caller loads."""
    blocks = range(-(-spec.customers // BLOCK_CUSTOMERS))
    if len(blocks) == 1:
        yield _block_payload(spec, 0)
        return
    with ProcessPoolExecutor(max_workers=GENERATOR_PROCESSES) as pool:
        pending: deque = deque()
        for index in blocks:
            pending.append(pool.submit(_block_payload, spec, index))
            if len(pending) > GENERATOR_PROCESSES:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def generate_and_load(
    customers: int,
    days: int,
    seed: int,
    end_date: str | date | None = None,
    window_days: int = 90,
    settings: Settings | None = None,
) -> str:
    """Replace master_data.* and demo_truth.* with freshly generated data; returns a summary.

    The schemas dbt and the scorer build (analytics*) are dropped: they described the old data.
    """
    if isinstance(end_date, str):
        end_date = date.fromisoformat(end_date)
    spec = DemoSpec(customers, days, seed, end_date or date.today(), window_days)
    started = time.perf_counter()
    n_customers = n_sales = 0
    with db.connect(settings) as conn:
        conn.execute("set timezone = 'UTC'")
        _drop_derived_schemas(conn)
        for statement in contract.create_tables(contract.load((settings or get_settings()).project_dir)):
            conn.execute(statement)
        conn.execute(DDL)
        for block_customers, block_sales, customer_csv, sales_csv, truth_csv in _payloads(spec):
            _copy(conn, "master_data.customers", CUSTOMER_COLUMNS, customer_csv)
            _copy(conn, "master_data.sales", SALE_COLUMNS, sales_csv)
            _copy(conn, "demo_truth.bad_probability", ["customer_id", "as_of_date", "p_bad"], truth_csv)
            n_customers += block_customers
            n_sales += block_sales
    seconds = time.perf_counter() - started
    with db.connect(settings, autocommit=True) as conn:
        conn.execute("analyze master_data.customers, master_data.sales")
    return (
        f"demo master data: {n_customers:,} customer rows, {n_sales:,} sale rows "
        f"from {spec.start_date} to {spec.end_date} (seed {seed}) loaded in {seconds:.1f} s "
        f"({n_sales / seconds:,.0f} sale rows/s)"
    )
