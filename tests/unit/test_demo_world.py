"""The demo world: the same seed gives the same data, and its truth uses dbt's outcome window."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from custlabel.config import DEFAULT_PROJECT_DIR
from custlabel.demo import truth
from custlabel.demo.generator import generate_block
from custlabel.demo.loader import CUSTOMER_COLUMNS, SALE_COLUMNS, _csv_bytes
from custlabel.demo.world import DAY, DemoSpec, stamp, stamped_before
from custlabel.errors import CustlabelError

END = date(2026, 6, 30)
# md5 of the COPY payloads (customers, sales, truth) of 300 customers over 200 days, seed 7, window 90:
# a change here changes every demo. The truth's probabilities are hashed to 12 significant digits: numpy's
# exp and log differ in the last bit from one CPU to another (its AVX-512 and AVX2 code paths).
GENERATED_MD5 = "89b47206983da917b186c4a094da6791"


def test_the_same_seed_and_end_date_give_the_same_data_as_before() -> None:
    block = generate_block(DemoSpec(300, 200, 7, END, 90), 0, 0, 300)
    truth = block.truth.assign(p_bad=block.truth["p_bad"].map(lambda p: float(f"{p:.12g}")))
    digest = hashlib.md5()
    for frame in (block.customers[CUSTOMER_COLUMNS], block.sales[SALE_COLUMNS], truth):
        digest.update(_csv_bytes(frame))
    assert digest.hexdigest() == GENERATED_MD5


def _project(folder: Path, window: object) -> Path:
    (folder / "dbt_project.yml").write_text(yaml.safe_dump({"name": "custlabel", "vars": {"outcome_window_days": window}}))
    return folder


def test_the_truth_window_is_dbts_outcome_window(tmp_path: Path) -> None:
    dbt_vars = yaml.safe_load((DEFAULT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    assert truth.outcome_window_days(DEFAULT_PROJECT_DIR) == dbt_vars["outcome_window_days"]

    window = truth.outcome_window_days(_project(tmp_path, 30))
    dates = truth.truth_dates(DemoSpec(10, 400, 1, END, window))
    assert window == 30
    assert dates[-1] == date(2026, 5, 1)  # matured 30 days after; with 90 days the last would be 2026-03-01
    assert all(d + timedelta(days=30) <= END for d in dates)


@pytest.mark.parametrize("window", [None, "ninety", 0, True])
def test_a_bad_outcome_window_is_named(tmp_path: Path, window: object) -> None:
    with pytest.raises(CustlabelError, match="vars.outcome_window_days must be a positive whole number of days"):
        truth.outcome_window_days(_project(tmp_path, window))


def test_a_fact_stamped_at_the_end_instant_belongs_to_the_next_night() -> None:
    end_day = 200.0
    half_a_second = 0.5 / DAY
    days = np.array([end_day - 2 * half_a_second, end_day - 0.8 * half_a_second, end_day - 0.2 * half_a_second, end_day])
    # the last three are stamped at the end instant: midnight after the last night, a fact of the next night
    assert list(stamp(datetime(2026, 1, 1, tzinfo=UTC), days).dt.time.astype(str)) == ["23:59:59", "00:00:00", "00:00:00", "00:00:00"]
    assert list(stamped_before(days, end_day)) == [True, False, False, False]
