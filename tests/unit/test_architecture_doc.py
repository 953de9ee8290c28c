"""docs/architecture.md's map of the package is the code's: generated from the import contracts and docstrings."""

from __future__ import annotations

import shutil
from pathlib import Path

from custlabel.config import DEFAULT_PROJECT_DIR
from custlabel.devtools import architecture


def test_the_page_shows_the_rooms_the_contracts_and_docstrings_give() -> None:
    page = (DEFAULT_PROJECT_DIR / architecture.PAGE).read_text()

    assert architecture.current(page) == architecture.rooms(), "run python -m custlabel.devtools.architecture"


def test_a_new_module_changes_the_map(tmp_path: Path) -> None:
    shutil.copy(DEFAULT_PROJECT_DIR / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(DEFAULT_PROJECT_DIR / "python" / "custlabel", tmp_path / "python" / "custlabel")
    before = architecture.rooms(tmp_path)
    (tmp_path / "python" / "custlabel" / "scoring" / "tonight_export.py").write_text('"""Tonight\'s labels as a CSV file."""\n')

    after = architecture.rooms(tmp_path)

    assert after != before
    assert "- `tonight_export`: Tonight's labels as a CSV file." in after


def test_every_module_of_the_package_is_on_the_map() -> None:
    rooms = architecture.rooms()
    package = DEFAULT_PROJECT_DIR / "python" / "custlabel"
    for path in package.rglob("*.py"):
        if path.name == "__init__.py" or path.parent == package:
            continue
        assert f"`{path.stem}`:" in rooms or f".{path.stem}`:" in rooms, path
