"""What makes the nightly run train a new version: code, data, performance, age (and bootstrap or no_champion).

Each trigger measures one figure against its threshold; the fired ones are recorded
as `triggered` release events with both. The data and performance triggers read the
monitoring's alerts table (`alerts.TABLE` in `<schema>_monitoring`, written each night
by `alerts.evaluate`), counting the rules that alerts.yml says feed them (`trigger:`);
before the first night's alerts exist they measure the label history and the monitoring marts. Every table is
read on the target's engine (custlabel.warehouse.engine_schemas: Postgres, or Spark for the spark target). Without a champion (none yet, or the candidates were
rejected or rolled back) the trigger is `bootstrap` or `no_champion`. After a candidate
closed without becoming champion, no training for `triggers.cool_off_nights` nights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from custlabel.config import Settings, monitoring_schema
from custlabel.monitoring import alerts
from custlabel.release import fingerprint, lifecycle, release_log
from custlabel.release.canary_health import psi
from custlabel.release.release_policy import ReleasePolicy
from custlabel.release.rollout import ReleaseState
from custlabel.scoring import writeback
from custlabel.training import acceptance, registry, training_data
from custlabel.warehouse import engine_schemas
from custlabel.warehouse.engine_schemas import Schema


@dataclass(frozen=True)
class Trigger:
    """One trigger's measurement tonight: fired or not, why, the measured value and its threshold."""

    name: str
    fired: bool
    reason: str
    value: Any = None
    threshold: Any = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _schemas(settings: Settings, schema: str) -> tuple[Schema, Schema]:
    """The target's schema and its monitoring schema, on the target's engine."""
    return engine_schemas.of_target(settings, schema), engine_schemas.of_target(settings, monitoring_schema(schema))


def _in(name: str, values: list[str]) -> tuple[str, dict[str, str]]:
    """`(:name_0, :name_1, ...)` and its parameters: a list either engine binds."""
    params = {f"{name}_{i}": value for i, value in enumerate(values)}
    return "(" + ", ".join(f":{key}" for key in params) + ")", params


def code(settings: Settings, tags: dict[str, str], criteria: acceptance.AcceptanceCriteria) -> Trigger:
    """The dbt models upstream of training_set, the training modules or acceptance.yml differ from the champion's."""
    now = {fingerprint.CODE_TAG: fingerprint.training_code_sha256(settings), "acceptance_sha256": criteria.sha256}
    changed = [name for name, value in now.items() if tags.get(name) != value]
    reason = (f"{', '.join(changed)} differs from the champion's" if changed
              else "dbt models upstream of training_set, training code and acceptance.yml as the champion's")
    return Trigger("code", bool(changed), reason, now, {name: tags.get(name) for name in now})


def firing_nights(settings: Settings, schema: str, night: date, rules: list[str], window: int) -> int | None:
    """Nights among the last `window` (up to tonight) with one of these alert rules firing; None without the alerts
    table or without a rule."""
    _, monitoring = _schemas(settings, schema)
    if not rules or not monitoring.exists(alerts.TABLE):
        return None
    table = monitoring.name(alerts.TABLE)
    listed, params = _in("rule", rules)
    rows = monitoring.frame(
        f"with nights as (select distinct as_of_date from {table} where as_of_date <= :night"
        f" order by as_of_date desc limit {int(window)})"
        f" select count(distinct a.as_of_date) as nights from {table} as a join nights using (as_of_date)"
        f" where a.state = :state and a.rule in {listed}",
        {"night": night, "state": alerts.FIRING, **params},
    )
    return int(rows["nights"].iloc[0])


def score_drift_nights(settings: Settings, schema: str, champion: str, night: date, policy: ReleasePolicy) -> tuple[int, list[float]]:
    """Stand-in for the drift alert: the champion's score PSI on each of the last nights against its first full night."""
    labels, _ = _schemas(settings, schema)
    history = labels.name(writeback.HISTORY)
    version = {"name": settings.model_name, "version": champion}
    reference = labels.frame(
        f"select as_of_date from {history} group by as_of_date"
        " having count(*) filter (where model_name = :name and model_version = :version) = count(*)"
        " order by as_of_date limit 1", version)["as_of_date"].tolist()
    if not reference:
        return 0, []
    nights = labels.frame(
        f"select distinct as_of_date from {history} where model_name = :name and model_version = :version"
        f" and as_of_date <= :night and as_of_date > :reference order by as_of_date desc"
        f" limit {int(policy.triggers.data.window_nights)}",
        {**version, "night": night, "reference": reference[0]})["as_of_date"].tolist()

    def scores(on: date) -> np.ndarray:
        return labels.frame(f"select score from {history} where as_of_date = :night and model_name = :name"
                            " and model_version = :version", {**version, "night": on})["score"].to_numpy(float)

    base = scores(reference[0])
    distances = [psi(base, scores(on)) for on in nights]
    return sum(d > policy.triggers.data.max_score_psi for d in distances), distances


def data_drift(settings: Settings, schema: str, champion: str, night: date, policy: ReleasePolicy,
               alert_rules: alerts.AlertConfig) -> Trigger:
    """Drift on k of the last n nights: the alerts whose rules feed the data trigger (alerts.yml), else the champion's score PSI."""
    rule = policy.triggers.data
    fed = alert_rules.feeding("data")
    firing = firing_nights(settings, schema, night, fed, rule.window_nights)
    if firing is not None:
        return Trigger("data", firing >= rule.drift_nights,
                       f"alerts {', '.join(fed)} fired on {firing} of the last {rule.window_nights} nights", firing,
                       rule.drift_nights)
    drifting, distances = score_drift_nights(settings, schema, champion, night, policy)
    shown = ", ".join(f"{d:.3f}" for d in distances) or "no night to compare yet"
    return Trigger(
        "data", drifting >= rule.drift_nights,
        f"champion score PSI above {rule.max_score_psi:g} on {drifting} of the last {rule.window_nights} nights ({shown})",
        drifting, rule.drift_nights,
    )


def matured_labels(settings: Settings, schema: str, tags: dict[str, str], policy: ReleasePolicy) -> Trigger:
    """Enough training rows whose outcome matured after the champion's test date."""
    needed = policy.triggers.data.min_new_matured_labels
    test_date = tags.get("test_date")
    labels, _ = _schemas(settings, schema)
    if not test_date or not labels.exists(training_data.TABLE):
        return Trigger("data", False, "the champion records no test date, or there is no training_set", 0, needed)
    count = int(labels.frame(f"select count(*) as matured from {labels.name(training_data.TABLE)} where as_of_date > :test_date",
                             {"test_date": date.fromisoformat(test_date)})["matured"].iloc[0])
    return Trigger("data", count >= needed, f"{count:,} labels matured since the champion's test date {test_date}",
                   count, needed)


def performance(settings: Settings, schema: str, champion: str, night: date, criteria: acceptance.AcceptanceCriteria,
                policy: ReleasePolicy, alert_rules: alerts.AlertConfig) -> Trigger:
    """Realized precision of the champion below acceptance; before any window matured, the alerts whose rules feed the
    performance trigger (alerts.yml), else its estimated precision."""
    floor = criteria.performance.min_precision
    labels, monitoring = _schemas(settings, schema)
    version = {"name": settings.model_name, "version": champion}
    if monitoring.exists("realized_performance"):
        realized = monitoring.frame(
            f"select as_of_date, realized_precision from {monitoring.name('realized_performance')}"
            " where model_name = :name and model_version = :version and window_end <= :night"
            " and customers_with_outcome >= :customers and realized_precision is not null"
            " order by as_of_date desc limit 1",
            {**version, "night": night, "customers": policy.triggers.performance.min_customers_with_outcome})
        if not realized.empty:
            on, value = realized.iloc[0]
            on = pd.Timestamp(on).date()
            return Trigger("performance", value < floor, f"realized precision of v{champion} on {on}: {value:.1%}",
                           float(value), floor)
    fed = alert_rules.feeding("performance")
    firing = firing_nights(settings, schema, night, fed, 1)
    if firing is not None:
        return Trigger("performance", firing > 0, f"alerts {', '.join(fed)}: {'firing' if firing else 'quiet'} tonight",
                       firing, 1)
    history = labels.name(writeback.HISTORY)
    estimated = labels.frame(
        f"select avg(score) as estimated from {history} where model_name = :name and model_version = :version"
        f" and label = 'bad' and as_of_date = (select max(as_of_date) from {history}"
        " where model_name = :name and model_version = :version)", version)["estimated"]
    value = None if estimated.empty or pd.isna(estimated.iloc[0]) else float(estimated.iloc[0])
    if value is None:
        return Trigger("performance", False, "no matured window and no labels of the champion yet", None, floor)
    floor = floor - policy.triggers.performance.estimated_margin
    return Trigger("performance", value < floor,
                   f"no matured window yet: estimated precision (mean score of its 'bad' labels) {value:.1%}",
                   value, round(floor, 4))


def age(tags: dict[str, str], night: date, policy: ReleasePolicy) -> Trigger:
    """Days from the newest night the champion learnt from (its test date) to tonight."""
    limit = policy.triggers.age.max_days
    test_date = tags.get("test_date")
    if not test_date:
        return Trigger("age", False, "the champion records no test date", None, limit)
    days = (night - date.fromisoformat(test_date)).days
    return Trigger("age", days > limit, f"the champion's newest training night {test_date} is {days} days old", days, limit)


def evaluate(settings: Settings, schema: str, night: date, policy: ReleasePolicy, state: ReleaseState,
             retrain: bool = False) -> list[Trigger]:
    """Tonight's triggers (fired or not). Without a champion, `bootstrap` or `no_champion`; `retrain` is the operator's own."""
    found = [Trigger("requested", True, "the run was started with retrain")] if retrain else []
    if state.champion is None:
        if not state.has_model:
            return [*found, Trigger("bootstrap", True, "no model yet: the rule baseline labels until one is approved")]
        return [*found, Trigger("no_champion", True, "no version is champion (the candidates were rejected or rolled"
                                " back): the rule baseline labels until one is approved")]
    tags = registry.version_tags(settings).get(state.champion)
    if tags is None:
        return found  # the registry lost the champion: the fallback says so; nothing to measure against
    criteria, alert_rules = acceptance.load(settings=settings), alerts.load(settings=settings)
    return [
        *found,
        code(settings, tags, criteria),
        data_drift(settings, schema, state.champion, night, policy, alert_rules),
        matured_labels(settings, schema, tags, policy),
        performance(settings, schema, state.champion, night, criteria, policy, alert_rules),
        age(tags, night, policy),
    ]


def cooling_off(settings: Settings, night: date, policy: ReleasePolicy) -> str | None:
    """Why no training tonight although a trigger fired: the newest candidate closed and the last retraining
    was fewer than triggers.cool_off_nights nights ago. None when training may go ahead."""
    now = lifecycle.read(settings)
    newest = max(now.versions.values(), key=lambda v: int(v.version) if v.version.isdigit() else 0, default=None)
    if newest is None or newest.state not in lifecycle.CLOSED:
        return None
    retrained = [e.as_of_date for e in release_log.history(settings, model_name=settings.model_name)
                 if e.event == "triggered" and e.details.get("action") == "retrain" and e.as_of_date]
    if not retrained:
        return None
    nights = (night - max(retrained)).days
    wait = policy.triggers.cool_off_nights
    if nights >= wait:
        return None
    return (f"cooling off: the last candidate v{newest.version} was {newest.state} and the last retraining was "
            f"{nights} night(s) ago (triggers.cool_off_nights: {wait})")


def record(settings: Settings, night: date, fired: list[Trigger], actor: str, action: str) -> None:
    """A `triggered` release event per fired trigger: which, the measured value, the threshold, what was done."""
    for trigger in fired:
        lifecycle.record_trigger(settings, actor, f"{trigger.name}: {trigger.reason}",
                                 {"trigger": trigger.name, "value": trigger.value, "threshold": trigger.threshold,
                                  "action": action}, night)
