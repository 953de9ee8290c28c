"""Demo master data: customers and sales drawn from the world's hidden, drifting traits.

On a random day (a hazard that is higher when payment risk is high) a customer
begins to leave, and it shows the way it does in real master data:

- they stop paying: invoices still open that day, and those of every later sale,
  are never paid;
- dissatisfied, they return most purchases of the previous weeks within days
  (`LEAVING_RETURN_SHARE` of those of the last `LEAVING_LOOKBACK_DAYS`), and the same
  share of any later purchase;
- their purchases fade, halving every month, until they are churned and only buy
  now and then.

Real master data is messy, so a small documented share of rows is made messy on
purpose (see `world.MESS_RATES`): the dbt staging models must fix, quarantine or
reject each kind.

A purchase-only world (`DemoSpec.purchase_only`) keeps just what a till's purchase log
has: the purchases a customer kept making (a cancelled order never happened, a return
is not recorded), every one completed and paid at the counter, with no due date and no
channel. Its outcome is then purely whether a customer buys again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from custlabel.demo import truth
from custlabel.demo.world import (
    DAYS_PER_MONTH,
    DEFAULT_DRIFT_PER_YEAR,
    LEAVING_LOOKBACK_DAYS,
    LEAVING_RETURN_DELAY_DAYS,
    LEAVING_RETURN_SHARE,
    MESS_RATES,
    MONTHLY_STEPS,
    RETURN_DRIFT_PER_YEAR,
    SEGMENTS,
    DemoSpec,
    Timeline,
    Traits,
    draw_attributes,
    draw_baskets,
    draw_fates,
    draw_online_share,
    draw_traits,
    due_dates,
    engagement,
    record_delays,
    sigmoid,
    stamp,
    stamped_before,
)


@dataclass
class Block:
    customers: pd.DataFrame
    sales: pd.DataFrame
    truth: pd.DataFrame


def _traits(rng, timeline: Timeline, segment: np.ndarray, created_day: np.ndarray) -> Traits:
    """Each customer's traits month by month: starting traits, random walks and the population drift."""
    n, months = len(segment), timeline.months
    start = draw_traits(rng, segment)
    steps = rng.normal(0, 1, (n, months, 3)) * MONTHLY_STEPS
    years = np.arange(months) / 12.0
    leave_hazard = -np.log1p(-sigmoid(-4.4 + 0.9 * start.risk)) / DAYS_PER_MONTH
    leave_day = np.maximum(created_day, 0) + rng.exponential(1 / leave_hazard)
    return Traits(
        rate=np.exp(start.log_rate[:, None] + np.cumsum(steps[:, :, 0], axis=1)),
        p_default=sigmoid(start.logit_default[:, None] + np.cumsum(steps[:, :, 1], axis=1) + DEFAULT_DRIFT_PER_YEAR * years),
        p_return=sigmoid(start.logit_return[:, None] + np.cumsum(steps[:, :, 2], axis=1) + RETURN_DRIFT_PER_YEAR * years),
        p_cancel=np.repeat(sigmoid(start.logit_cancel)[:, None], months, axis=1),
        online=draw_online_share(rng, start.risk),
        leave_hazard=leave_hazard,
        leave_day=leave_day,
    )


def _active_spans(created_day: np.ndarray, timeline: Timeline) -> tuple[np.ndarray, np.ndarray]:
    """Start and length (days) of each customer's existence inside each month."""
    lo = np.maximum(timeline.edges[None, :-1], created_day[:, None])
    hi = np.broadcast_to(timeline.edges[None, 1:], lo.shape)
    return lo, np.clip(hi - lo, 0, None)


def _customers(rng, spec: DemoSpec, first: int, n: int, timeline: Timeline) -> tuple[pd.DataFrame, np.ndarray]:
    ids = np.char.add("C", np.char.zfill(np.arange(first, first + n).astype(str), 8))
    # 60% existed before the history starts, the rest join during it.
    before = rng.random(n) < 0.6
    created_day = np.where(before, -rng.uniform(0, 3 * 365, n), rng.uniform(0, spec.days, n))
    created_at = stamp(timeline.origin, created_day)
    frame = pd.DataFrame({
        "customer_id": ids,
        "created_at": created_at,
        "updated_at": created_at.copy(),  # a copy: pandas 3.1 can write through shared columns
        **draw_attributes(rng, n, spec.end_date),
    })
    for column in ["country", "segment", "birth_date", "gender"]:
        frame[column] = frame[column].where(rng.random(n) >= MESS_RATES["null_customer_attribute"], None)
    return frame, created_day


def _sales(rng, spec: DemoSpec, customers, created_day, timeline, traits: Traits, spans) -> pd.DataFrame:
    leave_day = traits.leave_day
    span_start, span_len = spans
    counts = rng.poisson(traits.rate * span_len)
    cust = np.repeat(np.arange(len(customers)), counts.sum(axis=1))
    flat = np.repeat(np.arange(counts.size), counts.ravel())
    day = span_start.ravel()[flat] + rng.random(len(flat)) * span_len.ravel()[flat]
    # Thinning: a leaving customer makes a fading share of the purchases they would have made.
    kept = rng.random(len(flat)) < engagement(day - leave_day[cust])
    cust, flat, day = cust[kept], flat[kept], day[kept]
    n_sales = len(flat)
    end_day = float(spec.days)

    quantity, amount, channel = draw_baskets(rng, traits.online[cust])
    p_cancel, p_return = traits.p_cancel.ravel()[flat], traits.p_return.ravel()[flat]
    fates = draw_fates(rng, day, p_cancel, p_return, traits.p_default.ravel()[flat])
    cancelled, returned, change_day = fates.cancelled, fates.returned, fates.change_day
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
    returned = returned | leave_returned
    change_day = np.where(leave_returned, leave_change_day, change_day)
    changed = (cancelled | returned) & stamped_before(change_day, end_day)
    status = np.where(changed & cancelled, "cancelled", np.where(changed & returned, "returned", "completed"))
    paid = ~cancelled & ~fates.defaulted & stamped_before(fates.pay_day, end_day) & (fates.pay_day < leaving_on)
    record_delay = record_delays(rng, n_sales)
    arrived = stamped_before(day + record_delay, end_day)

    status_changed = stamp(timeline.origin, change_day).where(changed)
    paid_at = stamp(timeline.origin, fates.pay_day).where(paid)
    recorded = stamp(timeline.origin, day + record_delay).where(record_delay > 0)
    updated_day = np.maximum.reduce([
        day + record_delay,
        np.where(changed, change_day, 0.0),
        np.where(paid, fates.pay_day, 0.0),
    ])
    owner = pd.array(customers["customer_id"].to_numpy()[cust], dtype="str")
    sold_at = stamp(timeline.origin, day)
    sales = pd.DataFrame({
        "sale_id": pd.Series(owner).str.cat(pd.Series(np.arange(n_sales)).astype(str), sep="-"),
        "customer_id": owner,
        "sold_at": sold_at,
        "quantity": quantity,
        "amount": amount,
        "status": status,
        "status_changed_at": status_changed,
        "due_at": due_dates(sold_at).where(~cancelled),
        "paid_at": paid_at,
        "channel": channel.astype(object),
        "recorded_at": recorded,
        "updated_at": stamp(timeline.origin, updated_day),
    })
    sales = sales[arrived].reset_index(drop=True)
    if spec.purchase_only:
        sales = sales[~cancelled[arrived]].reset_index(drop=True)
    sales = _make_messy(rng, sales, customers)
    return purchase_log(sales) if spec.purchase_only else sales


def purchase_log(sales: pd.DataFrame) -> pd.DataFrame:
    """Sales as a purchase log records them: completed, paid when sold, no due date, status change or channel."""
    return sales.assign(
        status="completed",
        status_changed_at=pd.NaT,
        due_at=pd.NaT,
        paid_at=sales["sold_at"],
        channel=None,
    )


def _pick(rng, n: int, kind: str) -> np.ndarray:
    return rng.random(n) < MESS_RATES[kind]


def _make_messy(rng, sales: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
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
    timeline = Timeline(spec)
    customers, created_day = _customers(rng, spec, first, n, timeline)
    segment = customers["segment"].fillna("consumer").to_numpy()
    traits = _traits(rng, timeline, segment, created_day)
    spans = _active_spans(created_day, timeline)
    sales = _sales(rng, spec, customers, created_day, timeline, traits, spans)
    # The truth knows unpaid invoices and returns; a purchase log's outcome has neither.
    p_bad = (
        pd.DataFrame(columns=["customer_id", "as_of_date", "p_bad"])
        if spec.purchase_only
        else truth.bad_probability(spec, customers["customer_id"].to_numpy(), timeline, created_day, traits)
    )
    _change_segments(rng, customers, spec, timeline)
    duplicated = customers[_pick(rng, n, "duplicate_customer_row")]
    return Block(pd.concat([customers, duplicated], ignore_index=True), sales, p_bad)


def _change_segments(rng, customers: pd.DataFrame, spec: DemoSpec, timeline: Timeline) -> None:
    """A few customers were re-segmented lately: the edit shows in updated_at only."""
    moved = rng.random(len(customers)) < 0.02
    when = stamp(timeline.origin, rng.uniform(spec.days - 60, spec.days - 1, moved.sum()))
    when.index = customers.index[moved]
    later = when > customers.loc[moved, "created_at"]
    target = later[later].index
    customers.loc[target, "segment"] = rng.choice(SEGMENTS, len(target))
    customers.loc[target, "updated_at"] = when[target]
