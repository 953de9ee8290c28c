"""A label reads every fact as it stood when its window closed: the nightly build, a full refresh
and a replay write the same label, whatever happened to the window's sales afterwards."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from custlabel.config import Settings
from custlabel.demo import loader
from custlabel.warehouse import db, dbt_runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 3, 1)
WINDOW_CLOSES = date(2026, 5, 30)  # NIGHT + 90 days: the label matures tonight
LATER = date(2026, 6, 2)

LOADED_THE_MORNING_AFTER = """
update master_data.customers set loaded_at = '{night}'::date + interval '1 day 8 hours';
update master_data.sales set loaded_at = '{night}'::date + interval '1 day 8 hours';
"""

# Every sale a good customer made in the window, returned two days after it closed.
RETURNED_AFTER_THE_WINDOW = """
update master_data.sales
set status = 'returned', status_changed_at = '2026-06-01 10:00+00', updated_at = '2026-06-01 10:00+00'
where customer_id = %(customer)s and status = 'completed'
    and sold_at >= '2026-03-02' and sold_at < '2026-05-31';
"""


def _label(settings: Settings) -> pd.DataFrame:
    return db.read_frame(
        settings, "select * from analytics.customer_outcomes where as_of_date = :night order by customer_id",
        {"night": NIGHT},
    ).reset_index(drop=True)


def _good_customer_with_sales_in_the_window(settings: Settings) -> str:
    return db.read_frame(
        settings, "select outcomes.customer_id from analytics.customer_outcomes as outcomes"
        " where outcomes.as_of_date = :night and outcomes.is_bad = 0 and not exists ("
        "   select from master_data.sales where sales.customer_id = outcomes.customer_id"
        "     and sales.status <> 'completed' and sales.sold_at >= '2026-03-02')"
        " order by outcomes.customer_id limit 1",
        {"night": NIGHT},
    )["customer_id"][0]


def test_a_sale_returned_after_the_window_closed_leaves_the_label_as_written(make_database):
    settings = make_database("label_at_window_end")
    loader.generate_and_load(customers=150, days=300, seed=12, end_date=WINDOW_CLOSES, settings=settings, i_mean_database=settings.connection.dbname)
    with db.connect(settings) as conn:
        conn.execute(LOADED_THE_MORNING_AFTER.format(night=WINDOW_CLOSES))
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=WINDOW_CLOSES)
    nightly = _label(settings)
    customer = _good_customer_with_sales_in_the_window(settings)

    with db.connect(settings) as conn:
        conn.execute(RETURNED_AFTER_THE_WINDOW, {"customer": customer})
        conn.execute(LOADED_THE_MORNING_AFTER.format(night=LATER))
    dbt_runner.run(settings, ["build"], target="prod", as_of_date=LATER)
    pd.testing.assert_frame_equal(_label(settings), nightly, obj="the next nightly build")

    dbt_runner.run(settings, ["build", "--full-refresh"], target="prod", as_of_date=LATER)
    pd.testing.assert_frame_equal(_label(settings), nightly, obj="a full refresh")

    dbt_runner.run(settings, ["build", "--full-refresh"], target="prod", as_of_date=WINDOW_CLOSES)
    pd.testing.assert_frame_equal(_label(settings), nightly, obj="a replay of the night the window closed")

    returned = db.read_frame(
        settings, "select count(*) as n from analytics.int_sales_checked where customer_id = :customer and status = 'returned'",
        {"customer": customer},
    )["n"][0]
    assert returned > 0
