"""The tests of the night-by-night feature marts read a night's rows until a build whose tests of them pass, not
every night of the week: tonight's alone after a night that passed, every night since the last that passed after one
that did not, and every row on the next full-check night (macros/tests/checked_since.sql)."""

from __future__ import annotations

from datetime import date

import pytest

from custlabel.config import Settings
from custlabel.demo import loader
from custlabel.warehouse import db, dbt_runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIRST_BUILD = date(2026, 4, 27)  # a Monday: the first build checks every row
TUESDAY = date(2026, 4, 28)
WEDNESDAY = date(2026, 4, 29)
THURSDAY = date(2026, 4, 30)
FRIDAY = date(2026, 5, 1)
NEXT_MONDAY = date(2026, 5, 4)  # 7 nights after the last full check
FEATURES = ["build", "--select", "+customer_features_current", "+master_data_quarantine"]
WITHOUT_TESTS = ["run", "--select", "+customer_features_current", "+master_data_quarantine"]
A_RANGE_TEST = "customer_features_sales_count_30d"
BREAK_A_ROW = """
update analytics.customer_features set sales_count_30d = {value}
where as_of_date = '{night}' and customer_id = (
    select min(customer_id) from analytics.customer_features where as_of_date = '{night}')
"""


def _break_a_row(settings: Settings, night: date, value: int = -1) -> None:
    with db.connect(settings) as conn:
        assert conn.execute(BREAK_A_ROW.format(night=night, value=value)).rowcount == 1


def _checked_nights(settings: Settings) -> list[date]:
    recorded = db.read_frame(settings, "select as_of_date from analytics_monitoring.checked_nights order by 1", None)
    return list(recorded["as_of_date"])


def test_a_night_is_checked_until_a_build_whose_tests_of_it_pass(make_database):
    settings = make_database("checked_once")
    loader.generate_and_load(customers=300, days=200, seed=6, end_date=FIRST_BUILD, settings=settings,
                             i_mean_database=settings.connection.dbname)
    dbt_runner.run(settings, FEATURES, target="prod", as_of_date=FIRST_BUILD)
    dbt_runner.run(settings, FEATURES, target="prod", as_of_date=TUESDAY)

    # Tuesday's rows passed on Tuesday: written once, they are not read again before the next full check
    _break_a_row(settings, TUESDAY)
    dbt_runner.run(settings, FEATURES, target="prod", as_of_date=WEDNESDAY)

    # Thursday's build ran no test: Friday's tests read Thursday's rows, and again once Friday's failed
    dbt_runner.run(settings, WITHOUT_TESTS, target="prod", as_of_date=THURSDAY)
    _break_a_row(settings, THURSDAY)
    for _ in range(2):
        with pytest.raises(dbt_runner.DbtFailure, match=A_RANGE_TEST):
            dbt_runner.run(settings, FEATURES, target="prod", as_of_date=FRIDAY)
    _break_a_row(settings, THURSDAY, value=0)
    dbt_runner.run(settings, FEATURES, target="prod", as_of_date=FRIDAY)
    assert _checked_nights(settings) == [FIRST_BUILD, TUESDAY, WEDNESDAY, FRIDAY]

    # the next full check reads every row: Tuesday's too
    with pytest.raises(dbt_runner.DbtFailure, match=A_RANGE_TEST):
        dbt_runner.run(settings, FEATURES, target="prod", as_of_date=NEXT_MONDAY)
