"""`custlabel load` shows its progress on a terminal and nothing in a log."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from custlabel.config import Settings
from custlabel.warehouse import load

pytestmark = pytest.mark.integration

CUSTOMERS_CSV = "customer_id,created_at,updated_at,segment,country\nc1,2026-01-01,2026-01-02,retail,DE\n"
SALES_ROWS = 2_000


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def files(folder: Path) -> dict[str, Path]:
    customers = folder / "customers.csv"
    customers.write_text(CUSTOMERS_CSV)
    sales = folder / "sales.parquet"
    pq.write_table(pa.table({
        "sale_id": [f"s{i}" for i in range(SALES_ROWS)], "customer_id": ["c1"] * SALES_ROWS,
        "sold_at": ["2026-02-01"] * SALES_ROWS, "quantity": [1] * SALES_ROWS, "amount": [10.0] * SALES_ROWS,
        "status": ["completed"] * SALES_ROWS, "updated_at": ["2026-02-01"] * SALES_ROWS,
    }), sales)
    return {"customers": customers, "sales": sales}


@pytest.mark.parametrize("stream, shown", [(FakeTerminal(), True), (io.StringIO(), False)], ids=["terminal", "log"])
def test_load_progress_on_a_terminal_only(
    make_database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, shown: bool
) -> None:
    settings: Settings = make_database("custlabel_load_progress")
    monkeypatch.setattr(sys, "stderr", stream)

    load.load(settings, files(tmp_path), i_mean_database=settings.connection.dbname)

    text = stream.getvalue()
    if shown:
        assert "load customers.csv: 0/0 MiB (100%)" in text
        assert f"load sales.parquet: {SALES_ROWS:,}/{SALES_ROWS:,} rows (100%)" in text
    else:
        assert text == ""
