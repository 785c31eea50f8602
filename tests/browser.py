"""Headless Chromium for the browser tests: Debian's ``chromium`` package, driven by Playwright
(its Python client only: no browser download), cut off from every host but loopback.

Without a browser the tests skip, and under ``CI=true`` they fail: ``./scripts/test`` installs
it (``scripts/install-browser``).
"""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import IN_CI

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Any host but loopback fails to resolve: a page that needs a CDN shows it at once.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "images"


def browser_executable() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    reason = f"no headless browser on PATH (looked for {', '.join(BROWSERS)})"
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires one (scripts/install-browser)", pytrace=False)
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Browser]:
    executable = browser_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu", OFFLINE]
        )
        try:
            yield browser
        finally:
            browser.close()


def save_screenshot(page: Page, name: str) -> Path:
    """The page as docs/images/<name>.png, for the guides that show it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
