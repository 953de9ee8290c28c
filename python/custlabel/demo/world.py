"""The demo world's priors and draws: one copy, shared by the generator, the truth and the simulation.

Each customer has three hidden traits that drift month by month (a random walk in
log or logit space, plus a population-wide drift): engagement (purchases a day),
payment reliability (chance an invoice is never paid; unreliable payers also often
pay late, and take longer to pay when they do pay on time) and return propensity.
A latent risk links them. On a random day a customer may begin to leave (see the
generator): they stop paying, return most recent purchases and buy less and less.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

DAY = 86_400.0
DAYS_PER_MONTH = 365.25 / 12
PAYMENT_TERMS_DAYS = 30

PURCHASES_PER_DAY = 1 / 25
BASE_DEFAULT_PROBABILITY = 0.015
BASE_RETURN_PROBABILITY = 0.05
BASE_CANCEL_PROBABILITY = 0.03
# Monthly random-walk step (standard deviation) of log rate, logit default and logit return.
MONTHLY_STEPS = np.array([0.12, 0.2, 0.15])
DEFAULT_DRIFT_PER_YEAR = 0.25  # population drift of logit default
RETURN_DRIFT_PER_YEAR = 0.3  # population drift of logit return

ON_TIME_DELAY_SHAPE = 5  # an on-time payer's delay is Gamma(shape, scale) days
ON_TIME_DELAY_MEAN_DAYS = 14.0  # at the base default probability
ON_TIME_DELAY_RISK_SLOPE = 0.7  # the delay's log scale per unit of logit default probability
LATE_PAYMENT_DAYS = (PAYMENT_TERMS_DAYS + 1.0, PAYMENT_TERMS_DAYS + 40.0)  # a late payment's delay is uniform in it

CHURNED_RATE_FACTOR = 0.02  # a churned customer still buys now and then
LEAVING_HALF_LIFE_DAYS = 30.0  # a leaving customer's purchases halve every month until churned
LEAVING_LOOKBACK_DAYS = 45.0  # purchases this recent when a customer begins to leave may be returned
LEAVING_RETURN_SHARE = 0.8  # share of those (and of later purchases) a leaving customer returns
LEAVING_RETURN_DELAY_DAYS = 10.0  # they return them within this many days of beginning to leave

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


@dataclass(frozen=True)
class DemoSpec:
    """A generated history: its size, seed, last day and the outcome window its truth uses."""

    customers: int
    days: int
    seed: int
    end_date: date
    window_days: int
    # a purchase log only: no invoices, returns, cancellations or channels
    purchase_only: bool = False

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days - 1)


def month_starts(start: date, end: date) -> list[date]:
    """First day of every month overlapping [start, end]."""
    months, current = [], date(start.year, start.month, 1)
    while current <= end:
        months.append(current)
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return months


class Timeline:
    """Month boundaries of the history, in days since its first day."""

    def __init__(self, spec: DemoSpec):
        starts = month_starts(spec.start_date, spec.end_date)
        self.origin = datetime.combine(spec.start_date, datetime.min.time(), timezone.utc)
        edges = [max((m - spec.start_date).days, 0) for m in starts] + [spec.days]
        self.edges = np.array(edges, dtype=float)
        self.months = len(starts)


@dataclass(frozen=True)
class Traits:
    """Hidden traits of generated customers: per customer and month (n, months), or per customer (n,)."""

    rate: np.ndarray  # purchases a day
    p_default: np.ndarray  # an invoice is never paid
    p_return: np.ndarray
    p_cancel: np.ndarray
    online: np.ndarray  # (n,) share of purchases online
    leave_hazard: np.ndarray  # (n,) per day, of beginning to leave
    leave_day: np.ndarray  # (n,) the day each customer begins to leave


@dataclass(frozen=True)
class StartingTraits:
    """A new customer's latent risk and traits (log rate, logits), before any drift."""

    risk: np.ndarray
    log_rate: np.ndarray
    logit_default: np.ndarray
    logit_return: np.ndarray
    logit_cancel: np.ndarray


@dataclass(frozen=True)
class Fates:
    """What becomes of each sale: cancelled, returned (and when), never paid, or paid on a day."""

    cancelled: np.ndarray
    returned: np.ndarray
    change_day: np.ndarray
    defaulted: np.ndarray
    pay_day: np.ndarray


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def draw_traits(rng: np.random.Generator, segment: np.ndarray) -> StartingTraits:
    """Starting traits of customers of these segments, linked by a latent risk."""
    n = len(segment)
    segment_boost = np.select([segment == "enterprise", segment == "small_business"], [0.5, 0.2], 0.0)
    risk = rng.normal(0, 1, n)
    return StartingTraits(
        risk=risk,
        log_rate=np.log(PURCHASES_PER_DAY) + segment_boost + rng.normal(0, 0.5, n) - 0.25 * risk,
        logit_default=logit(BASE_DEFAULT_PROBABILITY) + 0.9 * risk + rng.normal(0, 0.6, n),
        logit_return=logit(BASE_RETURN_PROBABILITY) + 0.5 * risk + rng.normal(0, 0.6, n),
        logit_cancel=logit(BASE_CANCEL_PROBABILITY) + rng.normal(0, 0.4, n),
    )


def draw_online_share(rng: np.random.Generator, risk: np.ndarray) -> np.ndarray:
    """Share of each customer's purchases made online."""
    return sigmoid(rng.normal(0, 1.2, len(risk)) + 0.4 * risk)


def draw_attributes(rng: np.random.Generator, n: int, today: date) -> dict[str, np.ndarray]:
    """Master-data attributes of n customers: country, segment, birth date (aged 18 to 85 today), gender."""
    age_days = rng.uniform(18 * 365.25, 85 * 365.25, n)
    return {
        "country": rng.choice(COUNTRIES, n, p=COUNTRY_WEIGHTS),
        "segment": rng.choice(SEGMENTS, n, p=SEGMENT_WEIGHTS),
        "birth_date": (pd.Timestamp(today) - pd.to_timedelta(age_days, unit="D")).normalize().date,
        "gender": rng.choice(GENDERS, n, p=GENDER_WEIGHTS),
    }


def draw_baskets(rng: np.random.Generator, online_share: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantity, amount and channel of sales by customers with these online shares."""
    n = len(online_share)
    quantity = 1 + rng.poisson(1.2, n)
    amount = np.round(quantity * np.exp(rng.normal(3.2, 0.7, n)), 2)
    online = rng.random(n) < online_share
    channel = np.where(online, CHANNELS[rng.integers(0, 2, n)], CHANNELS[2 + rng.integers(0, 2, n)])
    return quantity, amount, channel


def late_share(p_default: np.ndarray) -> np.ndarray:
    """Share of a customer's paid invoices paid late: unreliable payers often pay late."""
    return np.minimum(2 * p_default, 1.0)


def on_time_delay_scale(p_default: np.ndarray) -> np.ndarray:
    """Gamma scale (days) of an on-time payment's delay: customers at risk of not paying pay
    later even when they pay on time, and slow down as their risk rises."""
    excess_risk = np.log(p_default / (1 - p_default)) - logit(BASE_DEFAULT_PROBABILITY)
    return ON_TIME_DELAY_MEAN_DAYS / ON_TIME_DELAY_SHAPE * np.exp(ON_TIME_DELAY_RISK_SLOPE * excess_risk)


def payment_delays(rng: np.random.Generator, p_default: np.ndarray) -> np.ndarray:
    """Days from sale to payment of invoices that will be paid: late (uniform in LATE_PAYMENT_DAYS)
    with probability late_share, else on time (Gamma(ON_TIME_DELAY_SHAPE, on_time_delay_scale))."""
    late = rng.random(len(p_default)) < late_share(p_default)
    on_time = rng.gamma(ON_TIME_DELAY_SHAPE, on_time_delay_scale(p_default))
    return np.where(late, rng.uniform(*LATE_PAYMENT_DAYS, len(p_default)), on_time)


def draw_fates(
    rng: np.random.Generator, day: np.ndarray, p_cancel: np.ndarray, p_return: np.ndarray, p_default: np.ndarray
) -> Fates:
    """Each sale's fate: cancelled within 2 days, returned within 3 to 45, or kept; kept ones paid or not."""
    n = len(day)
    u = rng.random(n)
    cancelled = u < p_cancel
    returned = ~cancelled & (u < p_cancel + p_return)
    change_day = np.where(cancelled, day + rng.uniform(0, 2, n), day + rng.uniform(3, 45, n))
    defaulted = ~cancelled & ~returned & (rng.random(n) < p_default)
    pay_day = day + payment_delays(rng, p_default)
    return Fates(cancelled, returned, change_day, defaulted, pay_day)


def record_delays(rng: np.random.Generator, n: int) -> np.ndarray:
    """Days between a sale and its row reaching master data: 0, or 1 to 10 for late-arriving rows."""
    return np.where(rng.random(n) < MESS_RATES["late_arriving"], rng.uniform(1, 10, n), 0.0)


def engagement(days_leaving: np.ndarray) -> np.ndarray:
    """Share of a customer's purchases still made this many days after they began to leave."""
    return np.maximum(np.exp2(-np.maximum(days_leaving, 0) / LEAVING_HALF_LIFE_DAYS), CHURNED_RATE_FACTOR)


def engaged_days(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Integral of engagement over days since beginning to leave in [start, end]."""
    half_life = LEAVING_HALF_LIFE_DAYS
    churned_from = half_life * np.log2(1 / CHURNED_RATE_FACTOR)
    before = np.minimum(end, 0) - np.minimum(start, 0)
    a, b = np.clip(start, 0, churned_from), np.clip(end, 0, churned_from)
    fading = half_life / np.log(2) * (np.exp2(-a / half_life) - np.exp2(-b / half_life))
    churned = CHURNED_RATE_FACTOR * (np.maximum(end, churned_from) - np.maximum(start, churned_from))
    return before + fading + churned


def stamp(origin: datetime, days: np.ndarray) -> pd.Series:
    """Timestamps (whole seconds, UTC) for day offsets from origin."""
    seconds = pd.to_timedelta(_whole_seconds(days), unit="s")
    return pd.Series(origin + seconds).astype("datetime64[us, UTC]")


def stamped_before(days: np.ndarray, end_day: float) -> np.ndarray:
    """Whether each day offset's stamp (whole seconds, rounded as stamp rounds) falls before end_day's: an offset
    less than half a second before the end is stamped at the end instant, the first of the next night."""
    return _whole_seconds(days) < _whole_seconds(end_day)


def _whole_seconds(days: np.ndarray | float) -> np.ndarray:
    """Day offsets in the whole seconds of their stamps."""
    return np.round(np.asarray(days) * DAY)


def due_dates(sold_at: pd.Series) -> pd.Series:
    """The day each sale's invoice falls due."""
    return (sold_at.dt.normalize() + pd.Timedelta(days=PAYMENT_TERMS_DAYS)).dt.date
