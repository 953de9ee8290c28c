"""`custlabel simulate`: advance the demo master data night by night and run the nightly flow each night.

Each simulated night appends what a company's master data would see in a day (or
`days_per_night` days): new customers, new sales, cancellations and returns of
earlier sales, payments of open invoices, rows that arrive days late, a small share
of messy rows, and customers whose hidden traits drift (engagement random walk,
payment risk and returns rising with the population drift of the demo world, churn).

The traits of the customers already in master data are estimated once from their
history; the simulation keeps its state in `demo_truth.sim_*` (demo only). Every
sale's fate (cancel, return, payment) is drawn when the sale is generated and
revealed in master data only when its time comes, so the data of a night is what
was known that night.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from custlabel.config import Settings, schema_for
from custlabel.demo import world
from custlabel.demo.world import logit, sigmoid
from custlabel.errors import CustlabelError
from custlabel.gate_verdicts import GATES_PASSED_TAG
from custlabel.monitoring import headline_figures
from custlabel.nightly import serving
from custlabel.release import approval, lifecycle, release_log
from custlabel.training import acceptance, model_families, registry
from custlabel.training.deployed_model import CHAMPION, model_label
from custlabel.warehouse import db, guard

DAY = timedelta(days=1)
NEW_CUSTOMERS_PER_YEAR = 0.2  # share of today's customers
CHURN_PER_MONTH = 0.01
EDITS_PER_DAY = 0.0005  # share of customers whose master record is edited (re-segmented) each day; at least one
PRIOR_WEIGHT = 10.0  # pseudo-sales pulling a customer's estimated rates toward the population's

DDL = """
create schema if not exists demo_truth;
create table if not exists demo_truth.sim_state (
    id integer primary key default 1 check (id = 1),
    last_night date not null,
    nights integer not null default 0,
    seed integer not null
);
create table if not exists demo_truth.sim_customers (
    customer_id text primary key,
    log_rate double precision, logit_default double precision, logit_return double precision,
    logit_cancel double precision, online double precision, churned boolean not null default false
);
create table if not exists demo_truth.sim_sales (
    sale_id text primary key,
    customer_id text, sold_at timestamptz, quantity numeric, amount numeric,
    final_status text, change_at timestamptz, due_at date, paid_at timestamptz,
    channel text, recorded_at timestamptz, mess text,
    published boolean not null default false
);
create index if not exists sim_sales_unpublished on demo_truth.sim_sales (published) where not published;
"""

TRAITS_QUERY = """
with sales as (
    select customer_id, sold_at, lower(trim(status)) as status, paid_at, due_at, channel
    from master_data.sales
    where sold_at >= %(since)s and sold_at < %(until)s and amount > 0
)
select
    c.customer_id,
    count(s.customer_id) filter (where s.status <> 'cancelled' and s.sold_at >= %(recent)s) as recent_sales,
    count(s.customer_id) as sales,
    count(s.customer_id) filter (where s.status = 'cancelled') as cancelled,
    count(s.customer_id) filter (where s.status = 'returned') as returned,
    count(s.customer_id) filter (where s.status = 'completed' and s.due_at < %(until)s::date) as due,
    count(s.customer_id) filter (where s.status = 'completed' and s.due_at < %(until)s::date and s.paid_at is null) as unpaid,
    count(s.channel) filter (where s.channel in ('web', 'app')) as online,
    count(s.channel) as with_channel
from (select distinct customer_id from master_data.customers where customer_id is not null) as c
left join sales as s using (customer_id)
group by c.customer_id
"""

OPEN_INVOICES_QUERY = """
select distinct on (sale_id) sale_id, customer_id, sold_at
from master_data.sales
where lower(trim(status)) = 'completed' and paid_at is null and due_at is not null
  and sold_at >= %(since)s and sale_id is not null
order by sale_id
"""

EDIT_CUSTOMERS = """
update master_data.customers as c set segment = e.segment, updated_at = e.updated_at
from (select unnest(%(ids)s::text[]) as customer_id, unnest(%(segments)s::text[]) as segment,
             unnest(%(at)s::timestamptz[]) as updated_at) as e
where c.customer_id = e.customer_id
"""

REVEAL_EVENTS = """
update master_data.sales as s set
    status = case when f.change_at >= %(start)s and f.change_at < %(end)s then f.final_status else s.status end,
    status_changed_at = case when f.change_at >= %(start)s and f.change_at < %(end)s then f.change_at
                             else s.status_changed_at end,
    paid_at = case when f.paid_at >= %(start)s and f.paid_at < %(end)s then f.paid_at else s.paid_at end,
    updated_at = greatest(
        s.updated_at,
        case when f.change_at >= %(start)s and f.change_at < %(end)s then f.change_at end,
        case when f.paid_at >= %(start)s and f.paid_at < %(end)s then f.paid_at end
    )
from demo_truth.sim_sales as f
where f.sale_id = s.sale_id and f.published
  and ((f.change_at >= %(start)s and f.change_at < %(end)s) or (f.paid_at >= %(start)s and f.paid_at < %(end)s))
"""

ARRIVALS = """
with arrived as (
    update demo_truth.sim_sales set published = true
    where not published and coalesce(recorded_at, sold_at) < %(end)s
    returning *
),
known as (
    select
        sale_id, customer_id, sold_at, quantity, amount, mess,
        case when change_at < %(end)s then final_status else 'completed' end as status,
        case when change_at < %(end)s then change_at end as status_changed_at,
        due_at,
        case when paid_at < %(end)s then paid_at end as paid_at,
        channel, recorded_at
    from arrived
),
copies as (
    select * from known
    union all
    select * from known where mess = 'duplicate'
)
insert into master_data.sales (
    sale_id, customer_id, sold_at, quantity, amount, status, status_changed_at, due_at, paid_at,
    channel, recorded_at, updated_at
)
select
    sale_id, customer_id, sold_at, quantity, amount,
    case mess when 'variant' then ' ' || upper(status) when 'unknown' then 'on_hold' else status end,
    status_changed_at, due_at, paid_at, channel, recorded_at,
    greatest(coalesce(recorded_at, sold_at), status_changed_at, paid_at)
from copies
"""


class SimulationError(CustlabelError):
    """The simulation cannot start (no demo master data)."""


@dataclass(frozen=True)
class NightData:
    """What one simulated night added to master data."""

    night: date
    new_customers: int
    new_sales: int
    arrived_sales: int
    late_sales: int
    revealed_events: int


def _end_of(night: date) -> datetime:
    """The first instant after a night's day (UTC)."""
    return datetime.combine(night + DAY, time.min, timezone.utc)


def _copy(conn: psycopg.Connection, table: str, frame: pd.DataFrame) -> None:
    if frame.empty:
        return
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="")
    columns = sql.SQL(", ").join(map(sql.Identifier, frame.columns))
    statement = sql.SQL("copy {} ({}) from stdin (format csv)").format(sql.SQL(table), columns)
    with conn.cursor().copy(statement) as copy:
        copy.write(buffer.getvalue())


def estimate_traits(counts: pd.DataFrame, recent_days: float) -> pd.DataFrame:
    """Per-customer traits from observed history, shrunk toward the population's rates."""
    def shrunk(events: pd.Series, trials: pd.Series) -> np.ndarray:
        population = events.sum() / max(trials.sum(), 1)
        return logit(((events + PRIOR_WEIGHT * population) / (trials + PRIOR_WEIGHT)).to_numpy(float))

    kept = counts["sales"] - counts["cancelled"]
    rate = (counts["recent_sales"].to_numpy(float) + 0.1) / recent_days
    return pd.DataFrame({
        "customer_id": counts["customer_id"],
        "log_rate": np.log(rate),
        "logit_default": shrunk(counts["unpaid"], counts["due"]),
        "logit_return": shrunk(counts["returned"], kept),
        "logit_cancel": shrunk(counts["cancelled"], counts["sales"]),
        "online": ((counts["online"] + 1) / (counts["with_channel"] + 2)).to_numpy(float),
        "churned": counts["recent_sales"].to_numpy() == 0,
    })


def drift(traits: pd.DataFrame, rng: np.random.Generator, days: int) -> pd.DataFrame:
    """Traits after `days` more days: the world's random walks and population drift, and churn."""
    months = days / 30.0
    n = len(traits)
    walk = rng.normal(0, 1, (n, 3)) * world.MONTHLY_STEPS * np.sqrt(months)
    out = traits.copy()
    out["log_rate"] += walk[:, 0]
    out["logit_default"] += walk[:, 1] + world.DEFAULT_DRIFT_PER_YEAR * months / 12
    out["logit_return"] += walk[:, 2] + world.RETURN_DRIFT_PER_YEAR * months / 12
    hazard = 1 - (1 - (CHURN_PER_MONTH + 0.5 * sigmoid(out["logit_default"].to_numpy()))) ** months
    newly = ~out["churned"].to_numpy() & (rng.random(n) < hazard)
    out.loc[newly, "log_rate"] += np.log(0.02)
    out["churned"] = out["churned"].to_numpy() | newly
    return out


def new_customers(rng: np.random.Generator, count: int, start: datetime, days: int, first_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers created during the night's days, with attributes and traits drawn as the demo world draws them."""
    ids = np.array([f"S{number:08d}" for number in range(first_id, first_id + count)], dtype=object)
    created = world.stamp(start, rng.uniform(0, days, count))
    attributes = world.draw_attributes(rng, count, start.date())
    customers = pd.DataFrame({"customer_id": ids, "created_at": created, "updated_at": created.copy(), **attributes})
    drawn = world.draw_traits(rng, attributes["segment"])
    traits = pd.DataFrame({
        "customer_id": ids,
        "log_rate": drawn.log_rate,
        "logit_default": drawn.logit_default,
        "logit_return": drawn.logit_return,
        "logit_cancel": drawn.logit_cancel,
        "online": world.draw_online_share(rng, drawn.risk),
        "churned": False,
    })
    return customers, traits


def new_sales(
    rng: np.random.Generator, traits: pd.DataFrame, active_from: np.ndarray, start: datetime, days: int, night_index: int
) -> pd.DataFrame:
    """Sales in [start, start + days) with their fates: cancel, return, payment, late arrival, mess."""
    exposure = np.clip(days - active_from, 0, None)
    counts = rng.poisson(np.exp(traits["log_rate"].to_numpy()) * exposure)
    who = np.repeat(np.arange(len(traits)), counts)
    n = len(who)
    day = active_from[who] + rng.random(n) * exposure[who]
    p_cancel = sigmoid(traits["logit_cancel"].to_numpy()[who])
    p_return = sigmoid(traits["logit_return"].to_numpy()[who])
    p_default = sigmoid(traits["logit_default"].to_numpy()[who])
    quantity, amount, channel = world.draw_baskets(rng, traits["online"].to_numpy()[who])
    fates = world.draw_fates(rng, day, p_cancel, p_return, p_default)
    record_delay = world.record_delays(rng, n)
    mess = rng.random(n)
    duplicate, variant, unknown = (
        world.MESS_RATES[kind] for kind in ("duplicate_sale_row", "status_spelling_variant", "unknown_status")
    )
    mess_kind = np.select(
        [mess < duplicate, mess < duplicate + variant, mess < duplicate + variant + unknown],
        ["duplicate", "variant", "unknown"], "",
    )

    sold_at = world.stamp(start, day)
    ids = traits["customer_id"].to_numpy()[who]
    cancelled, returned = fates.cancelled, fates.returned
    return pd.DataFrame({
        "sale_id": [f"{customer}-s{night_index}-{number}" for number, customer in enumerate(ids)],
        "customer_id": ids,
        "sold_at": sold_at,
        "quantity": quantity,
        "amount": amount,
        "final_status": np.where(cancelled, "cancelled", np.where(returned, "returned", "completed")),
        "change_at": world.stamp(start, fates.change_day).where(cancelled | returned),
        "due_at": world.due_dates(sold_at).where(~cancelled),
        "paid_at": world.stamp(start, fates.pay_day).where(~cancelled & ~fates.defaulted),
        "channel": channel,
        "recorded_at": world.stamp(start, day + record_delay).where(record_delay > 0),
        "mess": np.where(mess_kind == "", None, mess_kind),
    })


def _start(conn: psycopg.Connection, seed: int, rng: np.random.Generator) -> tuple[date, int]:
    """The simulation's state; on the first call, estimate traits and schedule payments of open invoices."""
    state = conn.execute("select last_night, nights from demo_truth.sim_state").fetchone()
    if state is not None:
        return state
    # The last load, not the latest sale: master data holds a few sales dated in the future.
    night = conn.execute(
        "select greatest((select max(updated_at) from master_data.sales), (select max(updated_at) from master_data.customers))::date"
    ).fetchone()[0]
    if night is None:
        raise SimulationError("master_data.sales is empty: run `custlabel demo-data` first")
    until = _end_of(night)
    counts = pd.DataFrame(
        conn.execute(TRAITS_QUERY, {"since": until - 365 * DAY, "recent": until - 180 * DAY, "until": until}).fetchall(),
        columns=["customer_id", "recent_sales", "sales", "cancelled", "returned", "due", "unpaid", "online", "with_channel"],
    )
    traits = estimate_traits(counts, 180.0)
    _copy(conn, "demo_truth.sim_customers", traits)
    # Open invoices get paid after the night (or never), as they would have in the demo's future.
    invoices = pd.DataFrame(
        conn.execute(OPEN_INVOICES_QUERY, {"since": until - 120 * DAY}).fetchall(), columns=["sale_id", "customer_id", "sold_at"]
    )
    p_default = sigmoid(invoices["customer_id"].map(traits.set_index("customer_id")["logit_default"]).fillna(logit(world.BASE_DEFAULT_PROBABILITY)).to_numpy())
    pays = rng.random(len(invoices)) >= p_default
    paid_at = pd.Series(until + pd.to_timedelta(np.round(rng.exponential(10.0, len(invoices)) * 86_400), unit="s"))
    _copy(conn, "demo_truth.sim_sales", pd.DataFrame({
        "sale_id": invoices["sale_id"], "paid_at": paid_at.where(pays), "published": True,
    }))
    conn.execute("insert into demo_truth.sim_state (last_night, nights, seed) values (%s, 0, %s)", [night, seed])
    return night, 0


def _edit_customers(
    conn: psycopg.Connection, rng: np.random.Generator, ids: np.ndarray, start: datetime, days: float
) -> None:
    """Re-segment a few customers (at least one a night): edits that show only in updated_at."""
    edited = min(len(ids), max(1, rng.poisson(len(ids) * EDITS_PER_DAY * days)))
    conn.execute(EDIT_CUSTOMERS, {
        "ids": [str(i) for i in rng.choice(ids, edited, replace=False)],
        "segments": [str(s) for s in rng.choice(world.SEGMENTS, edited)],
        "at": list(start + pd.to_timedelta(np.round(rng.uniform(0, days * 86_400, edited)), unit="s")),
    })


def advance(
    settings: Settings, days: int = 1, seed: int = 7, i_mean_database: str | None = None, rate_scale: float = 1.0
) -> NightData:
    """Append the next night's master data (`days` days of it); returns what was added.

    rate_scale multiplies the night's new customers, new sales and edits (the bench's share of changed rows).

    Off the embedded server, the operator must name the database (see guard.confirm_scratch_database).
    """
    with db.connect(settings) as conn:
        guard.confirm_scratch_database(
            conn, settings, i_mean_database, "append to master_data.sales and rewrite customers' segments and payments"
        )
        conn.execute(DDL)
        rng = np.random.default_rng([seed, 0])
        last_night, done = _start(conn, seed, rng)
        rng = np.random.default_rng([seed, done + 1])
        night = last_night + timedelta(days=days)
        start, end = _end_of(last_night), _end_of(night)

        traits = pd.DataFrame(
            conn.execute("select * from demo_truth.sim_customers order by customer_id").fetchall(),
            columns=["customer_id", "log_rate", "logit_default", "logit_return", "logit_cancel", "online", "churned"],
        )
        traits = drift(traits, rng, days)
        count = rng.poisson(len(traits) * NEW_CUSTOMERS_PER_YEAR * days * rate_scale / 365)
        first_id = conn.execute("select count(*) from demo_truth.sim_customers where customer_id like %s", ["S%"]).fetchone()[0]
        customers, born = new_customers(rng, count, start, days, first_id)
        active_from = np.concatenate([
            np.zeros(len(traits)),
            ((customers["created_at"] - start).dt.total_seconds() / 86_400).to_numpy(),
        ])
        everyone = pd.concat([traits, born], ignore_index=True)
        scaled = everyone.assign(log_rate=everyone["log_rate"] + np.log(rate_scale))
        sales = new_sales(rng, scaled, active_from, start, days, done + 1)

        conn.execute("truncate demo_truth.sim_customers")
        _copy(conn, "demo_truth.sim_customers", everyone)
        _copy(conn, "master_data.customers", customers)
        _copy(conn, "demo_truth.sim_sales", sales)
        _edit_customers(conn, rng, traits["customer_id"].to_numpy(), start, days * rate_scale)
        revealed = conn.execute(REVEAL_EVENTS, {"start": start, "end": end}).rowcount
        arrived = conn.execute(ARRIVALS, {"end": end}).rowcount
        conn.execute("update demo_truth.sim_state set last_night = %s, nights = nights + 1", [night])
        for table in ("customers", "sales"):
            conn.execute(STAMP_LOAD.format(sql.Identifier("master_data", table)), {"at": end + LOAD_DELAY, "start": start})
    for table in ("master_data.customers", "master_data.sales"):
        with db.connect(settings, autocommit=True) as conn:
            conn.execute(sql.SQL("analyze {}").format(sql.SQL(table)))
    return NightData(night, count, len(sales), arrived, int(sales["recorded_at"].notna().sum()), revealed)


# The night's extract is loaded the morning after it, stamped as `custlabel load` stamps a company's load.
LOAD_DELAY = timedelta(hours=8)
STAMP_LOAD = sql.SQL("update {} set loaded_at = %(at)s where updated_at >= %(start)s")


LOST_PAYMENTS = """
update master_data.sales set paid_at = null, updated_at = %(at)s
where paid_at >= %(since)s and paid_at < %(end)s
  and ('x' || substr(md5(customer_id), 1, 8))::bit(32)::bigint %% 100 < %(percent)s
"""


def inject_drift(settings: Settings, night: date, share: float = 0.2, days: int = 60) -> int:
    """A payments feed outage found on the night: the payments of the last `days` days of a share of the
    customers are lost (unpaid again in master data), so their invoices turn overdue and their scores rise."""
    end = _end_of(night)
    with db.connect(settings) as conn:
        return conn.execute(LOST_PAYMENTS, {
            "at": end - timedelta(hours=1), "since": end - days * DAY, "end": end, "percent": round(share * 100),
        }).rowcount


def inject_bad_challenger(settings: Settings, night: date, threshold: float = 0.01) -> str:
    """Register the champion's pipeline again with a wrong threshold (almost everyone "bad"), approved by mistake."""
    champion = registry.load_alias(settings, CHAMPION)
    if champion is None:
        raise SimulationError("no champion to copy for a bad challenger: inject it after the first promotion")
    with db.connect(settings) as conn:
        cursor = conn.execute(sql.SQL("select * from {} limit 200").format(
            sql.Identifier(settings.schema, "customer_features_current")))
        sample = pd.DataFrame(cursor.fetchall(), columns=[column.name for column in cursor.description])
    sample = sample[champion.feature_columns].astype({c: float for c in champion.feature_columns if c != "segment"})
    with registry.training_run(settings, "injected bad challenger", {"kind": "injected"}):
        version = registry.register_model(settings, champion.pipeline, sample, threshold, model_families.trusted_types())
    actor = "simulation (injected bad challenger)"
    registry.tag_version(settings, version, {"threshold": repr(threshold), GATES_PASSED_TAG: "true"})
    lifecycle.register(settings, version, actor, f"injected with threshold {threshold} (a wrong one)", {}, night, [])
    lifecycle.record_validation(settings, version, True, actor, "injected without validation: the mistake the canary"
                                " checks must catch", {}, night, acceptance.load(settings=settings),
                                lifecycle.read(settings).champion)
    approval.approve(settings, version, actor, f"injected with threshold {threshold} (a wrong one)")
    return version


def run(
    settings: Settings,
    nights: int,
    days_per_night: int = 1,
    target: str | None = None,
    seed: int = 7,
    auto_approve: bool = True,
    i_mean_database: str | None = None,
    inject_drift_on: int | None = None,
    inject_bad_challenger_on: int | None = None,
    drift_share: float = 0.2,
) -> Iterator[str]:
    """Advance the data and run the nightly flow, night after night; yields one line per night, then who is champion.

    Args:
        inject_drift_on: the night (1 is the first) whose data loses the recent payments of a share of the customers.
        inject_bad_challenger_on: the night before whose run a wrongly thresholded copy of the champion is approved.
    """
    settings = replace(settings, target=target or settings.target)
    schema = schema_for(settings.target)
    for number in range(1, nights + 1):
        data = advance(settings, days_per_night, seed, i_mean_database)
        injected = []
        if number == inject_drift_on:
            lost = inject_drift(settings, data.night, drift_share)
            injected.append(f"injected drift: {lost:,} payments lost")
        if number == inject_bad_challenger_on:
            injected.append(f"injected bad challenger v{inject_bad_challenger(settings, data.night)}")
        before = max((event.event_id for event in release_log.history(settings)), default=0)
        serving.run_once(as_of_date=data.night, target=settings.target, auto_approve=auto_approve, settings=settings)
        performance = acceptance.load(settings=settings).performance
        headline = headline_figures.read(settings, schema, data.night, headline_figures.Criteria(performance.min_precision, performance.min_recall))
        events = [event for event in release_log.history(settings) if event.event_id > before]
        yield night_line(data, headline, [*injected, *(event_text(event) for event in events)])
    yield champion_line(settings)


def champion_line(settings: Settings) -> str:
    """The last line of `custlabel simulate`: the version that is champion now, or that the rule baseline still labels."""
    champion = lifecycle.read(settings).champion
    if champion is None:
        return "champion: none, the rule baseline labels (no version has been promoted yet)"
    promoted = [event for event in release_log.history(settings, model_version=champion, model_name=settings.model_name)
                if event.event == "promoted"]
    since = f" (promoted {promoted[-1].as_of_date}: {promoted[-1].reason})" if promoted else ""
    return f"champion: {settings.model_name} v{champion}, a registered model{since}"


def event_text(event: release_log.RecordedEvent) -> str:
    """A release event in a few words."""
    version = f" v{event.model_version}" if event.model_version else ""
    text = f"{event.event}{version}"
    if event.event == "triggered":
        measured = "" if event.details.get("value") is None else (
            f": {event.details['value']} vs {event.details.get('threshold')}")
        text += f" ({event.details.get('trigger')}{measured}; {event.details.get('action')})"
    elif event.event in ("rolled_back", "fallback") or (event.event == "canary_night" and not event.details.get("healthy")):
        text += f" ({event.reason[:160]})"
    elif event.event == "canary_night":
        share = next((c for c in event.details.get("checks", []) if c["name"] == "canary_champion_bad_share"), None)
        if share is None:
            text += " (healthy)"
        else:
            who = "the champion's" if share["gated"] else "the rule's"
            text += f" (healthy; bad {share['figures']['canary']:.1%} on its slice, {who} {share['figures']['champion']:.1%})"
    return text


def night_line(data: NightData, headline: headline_figures.Headline, events: list[str] | None = None) -> str:
    """One line of `custlabel simulate` output: the data added, the labels, realized precision, the release events."""
    parts = [
        f"{data.night}: +{data.new_customers:,} customers, +{data.new_sales:,} sales "
        f"({data.arrived_sales:,} rows arrived, {data.late_sales:,} late), {data.revealed_events:,} returns/payments revealed"
    ]
    for labels in headline.labels:
        parts.append(f"{labels.customers:,} labelled by {model_label(labels.model_name, labels.model_version)}, bad {labels.bad_rate:.1%}")
    if headline.realized:
        parts.extend(
            f"realized {r.as_of_date}: precision {headline_figures.percent(r.realized_precision)} "
            f"recall {headline_figures.percent(r.realized_recall)}"
            for r in headline.realized
        )
    else:
        parts.append("realized precision: no matured window yet")
    parts.extend(events or [])
    return " | ".join(parts)
