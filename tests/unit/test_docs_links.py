"""The README is a front page, and every page and section it sends a reader to exists."""

import re
from pathlib import Path

import pytest

from custlabel.config import get_settings

ROOT = get_settings().project_dir
README_MAX_LINES = 200
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")

# The sections that left the README, and the page each lives on now.
MOVED_SECTIONS = {
    "docs/master-data.md": [
        "A company's first night: load, nightly, labels",
        "The master-data contract",
        "Loading files: `custlabel load`",
        "Data already in Postgres: views",
        "Worked example: pagila",
        "What happens to messy rows",
        "Demo master data",
    ],
    "docs/dbt-and-time.md": [
        "The layers",
        "Running dbt",
        "Source freshness",
        "Vars and tests",
        "Incremental builds: what the nightly build reads",
        "Time: what was known, when",
    ],
    "docs/model-lifecycle.md": [
        "Training and the model registry (data scientists)",
        "Releasing a version (who runs what)",
        "Validating a version (data scientist, with risk or compliance)",
        "The lifecycle of a model version",
        "Triggers",
        "Canary checks",
        "Loud fallback and rollback",
        "Watching a release over time: `custlabel simulate`",
    ],
    "docs/operations.md": [
        "The nightly job (Prefect)",
        "The Prefect deployment: a schedule",
        "The run summary and the release log",
        "When something fails",
        "Scoring and the label table (BI)",
        "The BI role: `custlabel grants`",
        "Monitoring: drift, estimated precision, alerts and the report",
        "Alerts (`alerts.yml`, owned by the ML engineer)",
        "The report",
        "The warehouse: embedded, or yours",
        "Security settings",
        "Environment variables",
    ],
    "docs/benchmarks.md": ["`make bench`", "Last measured", "Issue 24's targets", "Load and fault figures"],
}


def _pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def _prose(text: str) -> str:
    """The text outside code blocks, where a bracket is code rather than a link."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _headings(text: str) -> list[str]:
    return [line.lstrip("#").strip() for line in FENCE.sub("", text).splitlines() if re.match(r"#{1,6} ", line)]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    for heading in _headings(path.read_text()):
        anchor, suffix = _anchor(heading), 1
        unique = anchor
        while unique in anchors:
            unique, suffix = f"{anchor}-{suffix}", suffix + 1
        anchors.add(unique)
    return anchors


def _relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(_prose(path.read_text())) if not re.match(r"[a-z]+:", target)]


def test_the_readme_is_a_front_page_of_at_most_200_lines() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move sections to docs/"


@pytest.mark.parametrize("page", _pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_reaches_a_file_and_its_heading(page: Path) -> None:
    broken = []
    for target in _relative_links(page):
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading with this anchor in {linked.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", sorted(MOVED_SECTIONS))
def test_every_section_that_left_the_readme_has_its_page_linked_from_the_readme(page: str) -> None:
    readme_links = {target.partition("#")[0] for target in _relative_links(ROOT / "README.md")}
    assert page in readme_links, f"README.md does not link {page}"
    missing = set(MOVED_SECTIONS[page]) - set(_headings((ROOT / page).read_text()))
    assert not missing, f"{page} lacks the sections {sorted(missing)}"


def test_the_architecture_interfaces_and_changelog_are_linked_from_the_readme() -> None:
    readme_links = {target.partition("#")[0] for target in _relative_links(ROOT / "README.md")}
    assert {"docs/architecture.md", "docs/interfaces.md", "CHANGELOG.md"} <= readme_links
