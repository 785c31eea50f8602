"""/docs and /redoc render in a real browser cut off from everything but the service.

Headless Chromium (Debian's ``chromium``) loads each page from a live ``dsr serve`` with
every host but 127.0.0.1 unresolvable, under the page's own Content-Security-Policy, and the
rendered DOM must show the API's operations: a CDN asset, a blocked script or a document
ReDoc cannot read (one dangling ``$ref`` is enough) leaves an empty page or an error.
"""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import browser_executable
from tests.live_server import live_service

RENDER_TIMEOUT = 60


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("docs-browser")
    environment = {
        "DSR_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'dsr.db'}",
        "DSR_EXPORT_DIR": str(folder / "exports"),
    }
    with live_service(folder, environment) as service:
        yield service.base


def rendered(url: str, profile: Path) -> str:
    """The page's DOM once its scripts have run, with only loopback reachable."""
    result = subprocess.run(
        [
            browser_executable(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_render_the_api_offline(base: str, page: str, tmp_path: Path) -> None:
    dom = rendered(f"{base}{page}", tmp_path / "profile")

    assert "Something went wrong" not in dom, dom[:3000]
    # Operation summaries and a webhook event appear only once the document was read.
    for text in ("Log a new request", "List requests (the deadline board)", "request.received"):
        assert text in dom, f"{page} does not show {text!r}:\n{dom[:3000]}"
