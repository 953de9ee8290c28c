"""Alert rules evaluated night after night into the alerts table, and sent to a local HTTP receiver through Apprise."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from custlabel.config import get_settings
from custlabel.monitoring import alerts
from custlabel.release import release_policy, triggers
from custlabel.warehouse import db

pytestmark = pytest.mark.integration

FIRST = date(2026, 8, 1)
PSI = [0.05, 0.05, 0.4, 0.4, 0.05, 0.05]  # drift on nights 3 and 4
NIGHTS = [FIRST + timedelta(days=i) for i in range(len(PSI))]


class Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"json://127.0.0.1:{server.server_port}/hook", Receiver.received
    server.shutdown()
    server.server_close()


@pytest.fixture
def drift_mart(make_database):
    """A database whose feature_drift mart has one drifting feature on nights 3 and 4."""
    settings = make_database("alerts_it")
    with db.connect(settings) as conn:
        conn.execute("create schema analytics_monitoring")
        conn.execute("create table analytics_monitoring.feature_drift (as_of_date date, feature text, feature_kind text, psi float)")
        for night, psi in zip(NIGHTS, PSI, strict=True):
            conn.execute("insert into analytics_monitoring.feature_drift values (%s, 'revenue_30d', 'numeric', %s),"
                         " (%s, 'gender', 'sensitive', 0.5)", [night, psi, night])
    return settings


def config(url: str | None) -> alerts.AlertConfig:
    return alerts.AlertConfig(
        notify=alerts.Notify(url=url),
        rules=[alerts.Rule(name="feature_drift", metric="feature_psi_max", direction="above", threshold=0.25, k=2, n=3),
               alerts.Rule(name="score_drift", metric="score_psi", direction="above", threshold=0.2, k=1, n=1)],
    )


def test_states_night_by_night_and_notifications_of_changes(drift_mart, receiver):
    url, received = receiver
    for night in NIGHTS:
        alerts.evaluate(drift_mart, "analytics", night, config(url), run_id=f"run-{night}")
    with db.connect(drift_mart) as conn:
        rows = conn.execute("select as_of_date, rule, value, breaches, state, run_id from analytics_monitoring.alerts"
                            " where rule = 'feature_drift' order by as_of_date").fetchall()
        quiet = conn.execute("select distinct state, value from analytics_monitoring.alerts where rule = 'score_drift'").fetchall()
    assert [state for *_, state, _ in rows] == ["ok", "ok", "ok", "firing", "firing", "resolved"]
    assert [breaches for _, _, _, breaches, _, _ in rows] == [0, 0, 1, 2, 2, 1]
    assert rows[3][2] == pytest.approx(0.4) and rows[3][5] == f"run-{NIGHTS[3]}"
    assert quiet == [("ok", None)]  # no score_drift mart here: no value, never a breach
    titles = [message["title"] for message in received]
    assert titles == [f"custlabel analytics {NIGHTS[3]}: 1 alert(s) firing, 0 resolved",
                      f"custlabel analytics {NIGHTS[5]}: 0 alert(s) firing, 1 resolved"]
    assert "feature_drift firing: feature_psi_max 0.4 (above 0.25 on 2 of the last 3 nights, fires at 2)" in received[0]["message"]


def test_a_night_evaluated_again_replaces_its_rows(drift_mart):
    for night in NIGHTS[:4]:
        alerts.evaluate(drift_mart, "analytics", night, config(None))
    alerts.evaluate(drift_mart, "analytics", NIGHTS[3], config(None))
    firing = alerts.read(drift_mart, "analytics", NIGHTS[3])
    assert [(a.rule, a.state) for a in firing] == [("feature_drift", "firing"), ("score_drift", "ok")]
    assert len(alerts.read(drift_mart, "analytics", NIGHTS[3], nights=10)) == 8


def test_a_url_apprise_does_not_know_is_named(drift_mart):
    with pytest.raises(alerts.AlertConfigError, match="notify.url 'nosuch://x' is not a URL Apprise understands"):
        for night in NIGHTS[:4]:
            alerts.evaluate(drift_mart, "analytics", night, config("nosuch://x"))


def fed(feature_drift_trigger: str | None) -> alerts.AlertConfig:
    """The drifting feature's rule feeding a trigger (or none), beside a quiet rule fed to the data trigger."""
    return alerts.AlertConfig(rules=[
        alerts.Rule(name="feature_drift", metric="feature_psi_max", direction="above", threshold=0.25, k=2, n=3,
                    trigger=feature_drift_trigger),
        alerts.Rule(name="score_drift", metric="score_psi", direction="above", threshold=0.2, k=1, n=1, trigger="data"),
    ])


@pytest.mark.parametrize(("trigger", "fires"), [("data", True), ("performance", False), (None, False)])
def test_a_rule_fed_to_the_data_trigger_fires_it(drift_mart, trigger, fires):
    rules = fed(trigger)
    for night in NIGHTS[:5]:
        alerts.evaluate(drift_mart, "analytics", night, rules)
    policy = release_policy.load(settings=get_settings())  # the shipped data trigger: drift on 2 of the last 3 nights
    data = triggers.data_drift(drift_mart, "analytics", "1", NIGHTS[4], policy, rules)
    assert (data.fired, data.value) == (fires, 2 if fires else 0)
    assert data.reason.startswith(f"alerts {', '.join(rules.feeding('data'))} fired on")
