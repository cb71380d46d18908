"""A real browser for the dashboard tests: Debian's chromium, driven by Playwright.

Playwright's own browser download is not used; the system package is (`.ci/run` installs
it). A missing browser fails the tests: the dashboard is tested in a browser or not at
all, and a skipped browser test would pass unseen.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # tests run as root in CI containers, where the sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 820}


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    raise AssertionError(
        "No chromium found for the dashboard tests: install Debian's package "
        "(apt-get install chromium; .ci/run does) or set CHROMIUM_PATH to a Chromium binary."
    )


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def watch_console(page: Page, errors: list[str]) -> None:
    """Collect the page's script errors, so a test can assert there were none."""
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))

    def console(m: ConsoleMessage) -> None:
        # Answers like 409 or 404 are shown to the user by the page; the browser also logs
        # them as failed loads, which are not script errors.
        if m.type == "error" and not m.text.startswith("Failed to load resource"):
            errors.append(f"console: {m.text}")

    page.on("console", console)


def screenshot(page: Page, name: str, fallback: Path) -> Path:
    """Save a screenshot of the page: into DASHBOARD_SCREENSHOTS if set (`make screenshots`
    writes docs/img this way), else beside the test's other files."""
    folder = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or fallback)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
