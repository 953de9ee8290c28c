"""The night a build is for is the last complete one, and a label needs its whole window in the past."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from custlabel.demo import loader
from custlabel.nightly import night_steps
from custlabel.warehouse import db, dbt_runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_dbt_builds_the_last_complete_night_in_the_configured_time_zone(make_database, monkeypatch):
    settings = make_database("default_night")
    monkeypatch.setenv("CUSTLABEL_TIMEZONE", "Etc/GMT+12")
    dbt_runner.run(settings, ["build", "--select", "int_as_of_dates"], target="prod")
    tonight = db.read_frame(settings, "select max(as_of_date) as night from analytics.int_as_of_dates", None)["night"][0]
    assert tonight == night_steps.last_complete_night("Etc/GMT+12")


def test_a_label_is_written_only_once_its_window_is_entirely_in_the_past(make_database):
    settings = make_database("matured_windows")
    today = datetime.now(timezone.utc).date()
    # A monthly as-of date T whose window (T, T + W] ends today: today is not complete yet.
    ends_today = today.replace(day=1) if today.day > 1 else (today - timedelta(days=1)).replace(day=1)
    window = (today - ends_today).days
    loader.generate_and_load(
        customers=300, days=200, seed=8, end_date=today, settings=settings, i_mean_database=settings.connection.dbname
    )
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=str(today), extra_vars={"outcome_window_days": window})

    labelled = set(db.read_frame(
        settings, "select distinct as_of_date, window_end from analytics.customer_outcomes", None
    )["window_end"])
    assert labelled, "older windows are labels"
    assert max(labelled) <= today - timedelta(days=1)
    assert today not in labelled
    older = (ends_today - timedelta(days=1)).replace(day=1)
    assert older + timedelta(days=window) in labelled
