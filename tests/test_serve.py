"""`dsr serve` as a new user runs it: the embedded default, the demo CRM, a first request.

The server is a real process on a free loopback port; the flow is the README's.
"""

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.live_server import live_service

JANE = {"email": "jane.doe@example.com"}
PASSED_PASSPORT = {
    "method": "document",
    "document_type": "passport",
    "business_address_confirmed": True,
    "result": "passed",
}


@dataclass
class Served:
    base: str
    admin_id: str
    admin_secret: str
    output: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`dsr serve --port <free>` in an empty folder with only DSR_DEMO set, as the README does."""
    with live_service(tmp_path, {"DSR_DEMO": "true"}) as service:
        printed = service.printed()
        credentials = re.search(r"client_id=(\S+) client_secret=(\S+)", printed)
        assert credentials, printed
        yield Served(service.base, credentials.group(1), credentials.group(2), service.log)


def test_links_in_mail_point_at_the_port_served(served: Served) -> None:
    with httpx.Client(base_url=served.base, timeout=30) as http:
        token = http.post(
            "/v1/oauth/token",
            auth=(served.admin_id, served.admin_secret),
            data={"grant_type": "client_credentials"},
        )
        assert token.status_code == 200, token.text
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        created = http.post("/v1/requests", json={"type": "access", "subject": JANE})
        assert created.status_code == 201, created.text
        request_id = created.json()["id"]
        verified = http.post(f"/v1/requests/{request_id}/verification", json=PASSED_PASSPORT)
        assert verified.status_code == 200, verified.text
        assert http.post(f"/v1/requests/{request_id}/fulfil").status_code == 200
        deadline = time.monotonic() + 60
        while http.get(f"/v1/requests/{request_id}").json()["status"] != "completed":
            assert time.monotonic() < deadline, served.output.read_text()
            time.sleep(0.3)
        exports = http.get(f"/v1/requests/{request_id}/exports").json()["items"]

    assert exports
    for export in exports:
        assert export["download_url"].startswith(f"{served.base}/v1/exports/")
        # The link works where it points, without a token.
        assert httpx.get(export["download_url"], timeout=30).status_code == 200
