"""The master-data contract: read from the dbt sources file, shown in docs/master-data.md as it is there."""

from custlabel.config import get_settings
from custlabel.warehouse import contract


def _tables() -> dict[str, contract.Table]:
    return contract.load(get_settings().project_dir)


def test_the_contract_has_types_and_required_columns() -> None:
    tables = _tables()
    assert tables["sales"].required == ["sale_id", "customer_id", "sold_at", "quantity", "amount", "status", "updated_at"]
    assert tables["customers"].required == ["customer_id", "created_at", "updated_at"]
    types = {column.name: column.data_type for column in tables["sales"].columns}
    assert types["sold_at"] == "timestamp with time zone" and types["due_at"] == "date" and types["amount"] == "numeric"
    assert contract.LOAD_TIME_COLUMN not in [column.name for column in tables["sales"].file_columns]


def test_the_master_data_page_shows_the_contract_as_the_sources_file_defines_it() -> None:
    page = (get_settings().project_dir / "docs" / "master-data.md").read_text()
    start = page.index("<!-- contract:")
    shown = page[page.index("\n", start) + 1 : page.index("<!-- end of contract -->")]
    assert shown == contract.markdown(_tables())
