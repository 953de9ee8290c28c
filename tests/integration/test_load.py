"""`custlabel load`: good CSV and Parquet files land in master data; bad files name the problem and change nothing."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from custlabel.config import Settings
from custlabel.errors import CustlabelError
from custlabel.warehouse import db, dbt_runner, load

pytestmark = pytest.mark.integration

CUSTOMERS_CSV = """customer_id,created_at,updated_at,segment,country
c1,2026-01-01,2026-01-02 10:00:00,retail,DE
c2,2026-01-03T05:00:00Z,2026-01-03,,FR
"""
SALES_CSV = """sale_id,customer_id,sold_at,quantity,amount,status,updated_at,due_at
s1,c1,2026-02-01 09:30:00+01,1,10.5,completed,2026-02-01,2026-03-01
s2,c2,2026-02-02,2,20,returned,2026-02-05,
s3,c2,2026-02-03,1,7.25,completed,2026-02-03,
"""


@pytest.fixture(scope="module")
def database(make_database) -> Settings:
    return make_database("custlabel_load")


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _rows(settings: Settings, query: str) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute(query).fetchall()


def _load_good_csv(settings: Settings, folder: Path) -> None:
    load.load(
        settings, {"customers": _write(folder, "customers.csv", CUSTOMERS_CSV), "sales": _write(folder, "sales.csv", SALES_CSV)},
        i_mean_database=settings.connection.dbname,
    )


def test_good_csv_files_replace_master_data_with_a_load_time(database: Settings, tmp_path: Path) -> None:
    _load_good_csv(database, tmp_path)
    _load_good_csv(database, tmp_path)  # replace, not doubled

    sales = _rows(database, "select sale_id, sold_at, amount, status, due_at, channel from master_data.sales order by 1")
    assert [row[0] for row in sales] == ["s1", "s2", "s3"]
    assert sales[0][1] == datetime(2026, 2, 1, 8, 30, tzinfo=UTC)
    assert float(sales[2][2]) == 7.25
    assert sales[0][4].isoformat() == "2026-03-01" and sales[1][4] is None
    assert all(row[5] is None for row in sales)  # optional column absent from the file: null
    customers = _rows(database, "select customer_id, segment, gender from master_data.customers order by 1")
    assert customers == [("c1", "retail", None), ("c2", None, None)]
    stamps = _rows(database, "select distinct loaded_at from master_data.sales union select distinct loaded_at from master_data.customers")
    assert len(stamps) == 1 and stamps[0][0] is not None
    # the load time's default lived only inside the load's transaction
    defaults = _rows(database, "select column_default from information_schema.columns"
                               " where table_schema = 'master_data' and column_name = 'loaded_at'")
    assert defaults == [(None,), (None,)]


def test_good_parquet_files_load_with_zoned_timestamps_and_numbers(database: Settings, tmp_path: Path) -> None:
    stamp = pa.array([datetime(2026, 3, 1, 12, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)], pa.timestamp("us", tz="UTC"))
    pq.write_table(
        pa.table({"customer_id": ["p1", "p2"], "created_at": stamp, "updated_at": stamp, "gender": ["F", None]}),
        tmp_path / "customers.parquet",
    )
    pq.write_table(
        pa.table({
            "sale_id": ["q1", "q2"], "customer_id": ["p1", "p2"], "sold_at": stamp, "quantity": pa.array([1, 3]),
            "amount": pa.array([12.5, 0.0]), "status": ["completed", "cancelled"], "updated_at": stamp,
            "channel": ["online", "store, north"],
        }),
        tmp_path / "sales.parquet",
    )
    summary = load.load(
        database, {"customers": tmp_path / "customers.parquet", "sales": tmp_path / "sales.parquet"},
        i_mean_database=database.connection.dbname,
    )
    assert summary.rows == {"customers": 2, "sales": 2}
    sales = _rows(database, "select sale_id, sold_at, quantity, channel from master_data.sales order by 1")
    assert sales == [
        ("q1", datetime(2026, 3, 1, 12, tzinfo=UTC), 1, "online"),
        ("q2", datetime(2026, 3, 2, tzinfo=UTC), 3, "store, north"),
    ]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Tokyo", "Etc/GMT+12"])
def test_parquet_timestamps_keep_their_instant_in_any_company_time_zone(database: Settings, tmp_path: Path, zone: str) -> None:
    """A zoned timestamp is an instant wherever the company is; a naive one is a wall time in CUSTLABEL_TIMEZONE."""
    in_zone = replace(database, timezone=zone, connection=replace(database.connection, timezone=zone))
    zoned = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    wall_time = datetime(2026, 3, 1, 23, 30)
    pq.write_table(
        pa.table({
            "sale_id": ["z1", "n1"], "customer_id": ["c1", "c1"],
            "sold_at": pa.array([zoned, zoned], pa.timestamp("us", tz="UTC")),
            "quantity": pa.array([1, 1]), "amount": pa.array([1.0, 1.0]), "status": ["completed", "completed"],
            "updated_at": pa.array([wall_time, wall_time], pa.timestamp("us")),
        }),
        tmp_path / "sales.parquet",
    )
    load.load(in_zone, {"sales": tmp_path / "sales.parquet"}, i_mean_database=database.connection.dbname)
    rows = _rows(database, "select sale_id, sold_at, updated_at from master_data.sales order by 1")
    assert [row[1] for row in rows] == [zoned, zoned]
    assert [row[2] for row in rows] == [wall_time.replace(tzinfo=ZoneInfo(zone))] * 2


def test_append_adds_rows(database: Settings, tmp_path: Path) -> None:
    _load_good_csv(database, tmp_path)
    more = _write(tmp_path, "more.csv", "sale_id,customer_id,sold_at,quantity,amount,status,updated_at\ns4,c1,2026-02-09,1,3,completed,2026-02-09\n")
    load.load(database, {"sales": more}, mode="append", i_mean_database=database.connection.dbname)
    assert _rows(database, "select count(*) from master_data.sales") == [(4,)]


def _unchanged_after(database: Settings, files: dict[str, Path], expected: str) -> str:
    before = _rows(database, "select * from master_data.sales order by sale_id") + _rows(
        database, "select * from master_data.customers order by customer_id"
    )
    with pytest.raises(load.LoadError) as raised:
        load.load(database, files, i_mean_database=database.connection.dbname)
    message = str(raised.value)
    assert expected in message, message
    after = _rows(database, "select * from master_data.sales order by sale_id") + _rows(
        database, "select * from master_data.customers order by customer_id"
    )
    assert after == before
    return message


def test_missing_required_columns_are_listed_and_nothing_loads(database: Settings, tmp_path: Path) -> None:
    _load_good_csv(database, tmp_path)
    customers = _write(tmp_path, "new_customers.csv", CUSTOMERS_CSV.replace("c1", "c9"))
    sales = _write(tmp_path, "bad_sales.csv", "sale_id,customer_id,quantity,amount\ns9,c9,1,2\n")
    message = _unchanged_after(
        database, {"customers": customers, "sales": sales}, "missing required column(s) sold_at, status, updated_at"
    )
    assert "bad_sales.csv" in message


def test_unparsable_csv_value_names_file_row_and_column_and_nothing_loads(database: Settings, tmp_path: Path) -> None:
    _load_good_csv(database, tmp_path)
    customers = _write(tmp_path, "new_customers.csv", CUSTOMERS_CSV.replace("c1", "c9"))
    sales = _write(tmp_path, "bad_sales.csv", SALES_CSV.replace("2026-02-03,1,7.25", "2026-02-31,1,7.25"))
    message = _unchanged_after(database, {"customers": customers, "sales": sales}, "row 3 (line 4), column sold_at")
    assert "bad_sales.csv (sales)" in message and "2026-02-31" in message


def test_unparsable_parquet_value_names_file_row_and_column(database: Settings, tmp_path: Path) -> None:
    _load_good_csv(database, tmp_path)
    rows = 400_000  # record batches after the failing one: the conversion thread must stop, not hang
    amounts = ["1.5"] * rows
    amounts[70_001] = "twelve"
    pq.write_table(
        pa.table({
            "sale_id": [f"x{i}" for i in range(rows)], "customer_id": ["c1"] * rows, "sold_at": ["2026-02-01"] * rows,
            "quantity": [1] * rows, "amount": amounts, "status": ["completed"] * rows, "updated_at": ["2026-02-01"] * rows,
        }),
        tmp_path / "sales.parquet",
    )
    message = _unchanged_after(database, {"sales": tmp_path / "sales.parquet"}, "row 70002, column amount (numeric)")
    assert 'invalid input syntax for type numeric: "twelve"' in message
    assert "parquet-to-csv" not in {thread.name for thread in threading.enumerate()}


def test_unknown_columns_and_file_types_are_refused(database: Settings, tmp_path: Path) -> None:
    sales = _write(tmp_path, "sales.csv", SALES_CSV.replace("due_at", "due_date"))
    _unchanged_after(database, {"sales": sales}, "not in the sales contract: due_date")
    _unchanged_after(database, {"sales": _write(tmp_path, "sales.json", "{}")}, "unknown file type '.json'")


def test_a_server_other_than_the_embedded_one_needs_its_database_named(database: Settings, tmp_path: Path) -> None:
    files = {"customers": _write(tmp_path, "customers.csv", CUSTOMERS_CSV)}
    assert not database.embedded
    with pytest.raises(CustlabelError, match="name it: --i-mean-database custlabel_load"):
        load.load(database, files)
    with pytest.raises(CustlabelError, match="--i-mean-database 'custlabel' does not match the database 'custlabel_load'"):
        load.load(database, files, i_mean_database="custlabel")


def _load(settings: Settings, files: dict[str, Path], **options) -> load.LoadSummary:
    return load.load(settings, files, i_mean_database=settings.connection.dbname, **options)


def test_exact_duplicate_rows_are_collapsed_and_counted(database: Settings, tmp_path: Path) -> None:
    customers = _write(tmp_path, "customers.csv", CUSTOMERS_CSV + CUSTOMERS_CSV.splitlines()[1] + "\n")
    sales_lines = SALES_CSV.splitlines()
    sales = _write(tmp_path, "sales.csv", "\n".join([*sales_lines, sales_lines[2], sales_lines[2], sales_lines[3]]) + "\n")
    summary = _load(database, {"customers": customers, "sales": sales})
    assert summary.rows == {"customers": 2, "sales": 3}
    assert summary.duplicates == {"customers": 1, "sales": 3}
    assert "collapsed exact duplicate rows: 1 customers, 3 sales" in str(summary)
    assert _rows(database, "select sale_id, count(*) from master_data.sales group by 1 order by 1") == [
        ("s1", 1), ("s2", 1), ("s3", 1)
    ]


def test_appending_the_same_file_again_adds_nothing(database: Settings, tmp_path: Path) -> None:
    _load_good_csv(database, tmp_path)
    more = _write(tmp_path, "more.csv", "sale_id,customer_id,sold_at,quantity,amount,status,updated_at\ns4,c1,2026-02-09,1,3,completed,2026-02-09\n")
    first = _load(database, {"sales": more}, mode="append")
    again = _load(database, {"sales": more}, mode="append")
    assert (first.rows, first.duplicates) == ({"sales": 1}, {"sales": 0})
    assert (again.rows, again.duplicates) == ({"sales": 0}, {"sales": 1})
    assert _rows(database, "select count(*) from master_data.sales") == [(4,)]


def test_an_appended_newer_version_of_a_row_is_loaded_as_a_version(database: Settings, tmp_path: Path) -> None:
    _load_good_csv(database, tmp_path)
    newer = _write(tmp_path, "newer.csv", SALES_CSV.splitlines()[0] + "\ns3,c2,2026-02-03,1,7.25,returned,2026-02-10,\n")
    summary = _load(database, {"sales": newer}, mode="append")
    assert (summary.rows, summary.duplicates, summary.conflicts) == ({"sales": 1}, {"sales": 0}, {"sales": 0})
    assert _rows(database, "select status from master_data.sales where sale_id = 's3' order by updated_at") == [
        ("completed",), ("returned",)
    ]


def test_conflicting_rows_of_one_key_are_refused_with_counts_and_examples(database: Settings, tmp_path: Path) -> None:
    _load_good_csv(database, tmp_path)
    header, *lines = SALES_CSV.splitlines()
    conflicting = [*lines, "s2,c2,2026-02-02,2,25,returned,2026-02-05,", "s3,c2,2026-02-03,1,7.25,cancelled,2026-02-03,"]
    sales = _write(tmp_path, "conflicting_sales.csv", "\n".join([header, *conflicting]) + "\n")
    message = _unchanged_after(database, {"sales": sales}, "conflicting_sales.csv (sales): 2 sale_id(s) have rows")
    assert "same sale_id and updated_at, different values (4 rows)" in message
    assert "s2 at 2026-02-05 00:00:00+00: amount 20 | 25" in message
    assert "s3 at 2026-02-03 00:00:00+00: status completed | cancelled" in message
    assert "--conflicts quarantine" in message and "nothing loaded" in message


def test_an_appended_row_conflicting_with_master_data_is_refused(database: Settings, tmp_path: Path) -> None:
    _load_good_csv(database, tmp_path)
    changed = _write(tmp_path, "changed.csv", SALES_CSV.splitlines()[0] + "\ns1,c1,2026-02-01 09:30:00+01,1,11,completed,2026-02-01,2026-03-01\n")
    before = _rows(database, "select * from master_data.sales order by sale_id")
    with pytest.raises(load.LoadError, match=r"1 sale_id\(s\) have rows .* \(2 rows: 1 in the file, 1 already in master data\)"):
        _load(database, {"sales": changed}, mode="append")
    assert _rows(database, "select * from master_data.sales order by sale_id") == before


def test_conflicting_rows_go_to_the_quarantine_when_asked(database: Settings, tmp_path: Path) -> None:
    header, *lines = SALES_CSV.splitlines()
    sales = _write(tmp_path, "sales.csv", "\n".join([header, *lines, "s2,c2,2026-02-02,2,25,returned,2026-02-05,"]) + "\n")
    customers = _write(tmp_path, "customers.csv", CUSTOMERS_CSV)
    summary = _load(database, {"customers": customers, "sales": sales}, conflicts="quarantine")
    assert summary.rows == {"customers": 2, "sales": 4} and summary.conflicts == {"customers": 0, "sales": 2}
    assert "2 sales rows conflict (same sale_id and updated_at, different values): loaded for the quarantine" in str(summary)


def test_a_header_that_is_not_utf8_names_the_file_and_line(database: Settings, tmp_path: Path) -> None:
    _load_good_csv(database, tmp_path)
    path = tmp_path / "latin1_customers.csv"
    path.write_bytes(CUSTOMERS_CSV.replace("segment", "ségment").encode("latin-1"))
    message = _unchanged_after(
        database, {"customers": path}, "latin1_customers.csv (customers), line 1: not UTF-8 (byte 0xe9 at position 36)"
    )
    assert "save the file as UTF-8" in message


def test_a_row_that_is_not_utf8_names_the_file_and_line(database: Settings, tmp_path: Path) -> None:
    _load_good_csv(database, tmp_path)
    rows = [f"k{i},2026-01-01,2026-01-02,retail,DE" for i in range(60_000)]  # past the first 1 MiB chunk
    rows[49_998] = "k49998,2026-01-01,2026-01-02,retail,Française"
    path = tmp_path / "latin1_customers.csv"
    path.write_bytes("\n".join(["customer_id,created_at,updated_at,segment,country", *rows, ""]).encode("latin-1"))
    message = _unchanged_after(database, {"customers": path}, "latin1_customers.csv (customers), line 50000: not UTF-8")
    assert 'invalid byte sequence for encoding "UTF8": 0xe7' in message and "save the file as UTF-8" in message


NIGHTS = [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]
# The models and tests that stage, check and quarantine master data, with the quarantine bound.
QUARANTINE_BUILD = [
    "build", "--select", "+master_data_quarantine", "int_sales_validated", "assert_quarantine_rate_within_bound",
    "assert_every_source_row_is_clean_or_quarantined", "assert_checked_sales_match_master_data",
]


@pytest.fixture(scope="module")
def nightly_database(make_database) -> Settings:
    return make_database("custlabel_load_nights")


def _csv(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


def _sale(number: int, amount: float, status: str, updated_at: str) -> str:
    return f"s{number:03},c{number % 60:02},2026-01-10 {number % 24:02}:00,1,{amount},{status},{updated_at}"


def _build(settings: Settings, night: date) -> None:
    dbt_runner.run(settings, QUARANTINE_BUILD, target="prod", as_of_date=night.isoformat())


def test_repeated_appends_of_newer_versions_stay_versions_over_several_nights(
    nightly_database: Settings, tmp_path: Path
) -> None:
    customers_header = "customer_id,created_at,updated_at,segment"
    sales_header = "sale_id,customer_id,sold_at,quantity,amount,status,updated_at"
    _load(nightly_database, {
        "customers": _write(tmp_path, "customers.csv", _csv(customers_header, [
            f"c{number:02},2026-01-01,2026-01-01,retail" for number in range(60)
        ])),
        "sales": _write(tmp_path, "sales.csv", _csv(sales_header, [
            _sale(number, 10, "completed", f"2026-01-10 {number % 24:02}:00") for number in range(120)
        ])),
    })
    _build(nightly_database, date(2026, 2, 28))
    for night_number, night in enumerate(NIGHTS, start=1):
        # every night, ten sales and five customers change again: 8% of the sales are older versions by night one
        changed = night.isoformat() + " 09:00"
        sales = _write(tmp_path, f"sales-{night}.csv", _csv(sales_header, [
            _sale(number, 10 + night_number, "completed", changed) for number in range(10)
        ]))
        customers = _write(tmp_path, f"customers-{night}.csv", _csv(customers_header, [
            f"c{number:02},2026-01-01,{changed},segment-{night_number}" for number in range(5)
        ]))
        first = _load(nightly_database, {"customers": customers, "sales": sales}, mode="append")
        again = _load(nightly_database, {"customers": customers, "sales": sales}, mode="append")  # the same files twice
        assert (first.rows, again.rows, again.duplicates) == (
            {"customers": 5, "sales": 10}, {"customers": 0, "sales": 0}, {"customers": 5, "sales": 10}
        )
        _build(nightly_database, night)  # the quarantine bound (2%) holds
        assert _rows(nightly_database, "select count(*) from analytics.master_data_quarantine") == [(0,)]
        assert _rows(nightly_database, "select count(*), min(amount), max(amount) from analytics.int_sales_validated"
                                       " where sale_id < 's010'") == [(10, 10 + night_number, 10 + night_number)]
        assert _rows(nightly_database, "select count(*) from analytics.int_sales_validated") == [(120,)]
        assert _rows(nightly_database, "select distinct segment from analytics.int_customers_deduplicated"
                                       " where customer_id < 'c05'") == [(f"segment-{night_number}",)]
    superseded = "select count(*) from analytics.int_sales_checked where superseded and quarantine_reason is null"
    assert _rows(nightly_database, superseded) == [(30,)]


def test_conflicting_rows_loaded_for_the_quarantine_are_set_aside_with_their_reason(
    make_database, tmp_path: Path
) -> None:
    settings = make_database("custlabel_load_conflicts")
    header, *lines = SALES_CSV.splitlines()
    extra = [_sale(number, 10, "completed", "2026-01-10") + "," for number in range(100)]
    customers = [f"c{number:02},2026-01-01,2026-01-01,retail,DE" for number in range(60)]
    summary = _load(settings, {
        "customers": _write(tmp_path, "customers.csv", _csv(CUSTOMERS_CSV.splitlines()[0], [
            *CUSTOMERS_CSV.splitlines()[1:], *customers
        ])),
        "sales": _write(tmp_path, "sales.csv", _csv(header, [*lines, *extra, "s2,c2,2026-02-02,2,25,returned,2026-02-05,"])),
    }, conflicts="quarantine")
    assert summary.conflicts == {"customers": 0, "sales": 2}
    _build(settings, NIGHTS[0])
    assert _rows(settings, "select record_id, reason, staged_row ->> 'amount' from analytics.master_data_quarantine"
                           " order by 3") == [("s2", "conflicting_sale", "20"), ("s2", "conflicting_sale", "25")]
    assert _rows(settings, "select count(*) from analytics.int_sales_validated where sale_id = 's2'") == [(0,)]
