"""Open an HTML file in headless Chromium (Debian's `chromium`): the DOM after its scripts ran, a screenshot, the time taken."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from custlabel.errors import CustlabelError

QUIET = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--hide-scrollbars",
]


class BrowserError(CustlabelError):
    """Chromium is missing or could not open the page."""


@dataclass(frozen=True)
class Rendered:
    """What headless Chromium made of a page."""

    dom: str
    seconds: float


def executable() -> str | None:
    """Path of the chromium binary, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(page: Path, *args: str, timeout: float) -> tuple[str, float]:
    binary = executable()
    if binary is None:
        raise BrowserError("chromium is not installed (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="custlabel-chromium-") as profile:
        started = time.perf_counter()
        result = subprocess.run(
            [binary, *QUIET, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=timeout,
        )
        seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise BrowserError(f"chromium could not open {page}: {result.stderr.strip()[-500:]}")
    return result.stdout, seconds


def dump_dom(page: Path, timeout: float = 120.0) -> Rendered:
    """The page's DOM once loaded and its scripts ran, and the seconds Chromium took (start included)."""
    dom, seconds = _run(page, "--dump-dom", timeout=timeout)
    return Rendered(dom, seconds)


def screenshot(page: Path, path: Path, width: int = 1000, height: int = 5000, timeout: float = 120.0) -> Path:
    """A PNG screenshot of the page at a window size."""
    _run(page, f"--screenshot={path}", f"--window-size={width},{height}", timeout=timeout)
    if not path.exists():
        raise BrowserError(f"chromium wrote no screenshot of {page}")
    return path
