"""Asking for the export before fulfilment has produced it: the 404 says what is going on.

Queued or running, it says so with the progress (never the subject's data) and when to ask
again; before any fulfilment it still says to fulfil the request first. Real worker, the
demo CRM (SQLite or PostgreSQL) and an ``http`` source on loopback that answers slowly, so
the job is caught while it runs.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import AsyncClient, Response

from app.demo import JANE_DOE
from app.worker import Worker
from tests.conftest import new_client
from tests.factories import verified_request
from tests.fulfilment.conftest import CrmSource, drain
from tests.http_source_server import HttpSourceServer

JANE = {"email": JANE_DOE["email"], "name": "Jane Doe"}
# Jane's records in the demo CRM (every table's rows of hers).
JANE_RECORDS = 10
SLOW_SECONDS = 3.0


def assert_not_ready(response: Response, status: str) -> dict[str, Any]:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["title"] == "Export not ready"
    assert f"is {status}" in body["detail"]
    assert body["fulfilment"]["status"] == status
    assert response.headers["retry-after"] == "2"
    for identity in (JANE_DOE["email"], JANE_DOE["customer_id"], "Jane", "Doe"):
        assert identity not in json.dumps(body)
    return body


@pytest.fixture
async def slow_shop(
    client: AsyncClient, admin_headers: dict[str, str]
) -> AsyncIterator[HttpSourceServer]:
    """A second source, registered after the demo CRM, whose first answer takes a while."""
    with HttpSourceServer(token="shop-token") as server:
        body = {
            "name": "shop",
            "kind": "http",
            "base_url": server.base_url,
            "auth_token": "shop-token",
        }
        response = await client.post("/v1/data-sources", headers=admin_headers, json=body)
        assert response.status_code == 201, response.text
        empty_page = json.dumps({"tables": [], "next_cursor": None}).encode()
        server.fail("/access", status=200, body=empty_page, delay=SLOW_SECONDS)
        yield server


async def test_export_asked_for_while_fulfilment_is_queued_says_so(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    dsr = await verified_request(client, integration_headers, officer_headers, subject=JANE)
    export_url = f"/v1/requests/{dsr['id']}/export"
    never = await client.get(export_url, headers=integration_headers)
    assert never.status_code == 404
    assert "fulfil the request first" in never.json()["detail"]
    assert "fulfilment" not in never.json()

    fulfil = await client.post(f"/v1/requests/{dsr['id']}/fulfil", headers=officer_headers)
    assert fulfil.status_code == 200, fulfil.text

    body = assert_not_ready(await client.get(export_url, headers=integration_headers), "queued")
    assert "fulfil the request first" not in body["detail"]
    assert body["fulfilment"]["progress"] == {"step": "queued"}
    csv = await client.get(export_url, headers=integration_headers, params={"format": "csv"})
    assert_not_ready(csv, "queued")

    await drain(worker)
    assert (await client.get(export_url, headers=integration_headers)).status_code == 200


async def test_export_asked_for_while_fulfilment_runs_shows_its_progress(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    slow_shop: HttpSourceServer,
    worker: Worker,
) -> None:
    dsr = await verified_request(client, integration_headers, officer_headers, subject=JANE)
    fulfil = await client.post(f"/v1/requests/{dsr['id']}/fulfil", headers=officer_headers)
    assert fulfil.status_code == 200, fulfil.text
    export_url = f"/v1/requests/{dsr['id']}/export"

    running = asyncio.create_task(drain(worker))
    try:
        # The demo CRM is read; the shop's answer is slow: the job waits on it, running.
        for _ in range(int(SLOW_SECONDS / 0.05)):
            state = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
            if state["fulfilment"]["progress"].get("step") == "collecting from shop":
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail(f"fulfilment never reached the shop: {state['fulfilment']}")
        response = await client.get(export_url, headers=integration_headers)
    finally:
        await running

    body = assert_not_ready(response, "running")
    assert body["fulfilment"]["progress"] == {
        "step": "collecting from shop",
        "sources_done": 1,
        "records": JANE_RECORDS,
    }
    assert "collecting from shop" in body["detail"]
    assert f"{JANE_RECORDS} records written so far" in body["detail"]

    done = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert done["fulfilment"]["status"] == "succeeded", done["fulfilment"]
    assert (await client.get(export_url, headers=integration_headers)).status_code == 200


async def test_export_asked_for_while_tasks_are_open_says_it_waits_for_them(
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    helpdesk, _ = await new_client(client, admin_headers, "integration", "helpdesk")
    source = await client.post(
        "/v1/data-sources",
        headers=admin_headers,
        json={"name": "helpdesk", "kind": "task", "assignee_client_id": helpdesk},
    )
    assert source.status_code == 201, source.text
    dsr = await verified_request(client, integration_headers, officer_headers, subject=JANE)
    fulfil = await client.post(f"/v1/requests/{dsr['id']}/fulfil", headers=officer_headers)
    assert fulfil.status_code == 200, fulfil.text
    await drain(worker)

    response = await client.get(f"/v1/requests/{dsr['id']}/export", headers=officer_headers)

    assert response.status_code == 404, response.text
    body = response.json()
    assert body["title"] == "Export not ready"
    assert body["fulfilment"]["status"] == "waiting_for_tasks"
    assert "waiting for its tasks" in body["detail"]
    assert f"/v1/requests/{dsr['id']}/tasks" in body["detail"]
    # Tasks take as long as other people take: no hint to poll every few seconds.
    assert "retry-after" not in response.headers
