"""Fulfilment from the request page: the plan, approval, the job, its progress, and the export
downloaded by an officer (never by someone not signed in)."""

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.core.config import Settings
from app.demo import create_demo_crm
from app.worker import Worker
from tests.conftest import make_settings
from tests.console.helpers import login, make_person
from tests.factories import verified_request
from tests.fulfilment.conftest import drain, register_crm

OFFICER = "olivia.officer@example.com"
JANE = {"email": "jane.doe@example.com", "name": "Jane Doe"}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url, export_dir=str(tmp_path / "exports"), approval_required="erasure"
    )


@pytest.fixture
async def worker(app: FastAPI, settings: Settings) -> AsyncIterator[Worker]:
    instance = Worker(settings, app.state.sessionmaker)
    yield instance
    await instance.close()


async def test_fulfil_from_the_page_and_download_the_export(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    worker: Worker,
    tmp_path: Path,
) -> None:
    user_id = await make_person(app)
    crm = create_demo_crm(tmp_path / "demo_crm.db")
    await register_crm(client, admin_headers, f"sqlite:///{crm}")
    dsr = await verified_request(client, officer_headers, officer_headers, subject=JANE)
    token = await login(client, OFFICER)
    base = f"/console/requests/{dsr['id']}"

    planned = await client.get(base, params={"plan": "1"})
    assert planned.status_code == 200
    assert "What fulfilment would do" in planned.text and "demo_crm" in planned.text
    assert "Approve</button>" not in planned.text  # access needs no approval here

    fulfil = await client.post(f"{base}/actions/fulfil", data={"csrf_token": token})
    assert fulfil.status_code == 303, fulfil.text
    queued = await client.get(base)
    assert '<meta http-equiv="refresh" content="5">' in queued.text
    assert 'id="fulfilment-status">queued<' in queued.text
    assert ">Fulfil</button>" not in queued.text  # not twice
    requested = [
        event
        for event in (
            await client.get(f"/v1/requests/{dsr['id']}/events", headers=officer_headers)
        ).json()["items"]
        if event["type"] == "fulfilment.requested"
    ]
    assert [event["actor"] for event in requested] == [user_id]

    await drain(worker)
    done = await client.get(base)
    assert '<meta http-equiv="refresh"' not in done.text
    assert 'id="fulfilment-status">succeeded<' in done.text
    links = re.findall(rf'href="({base}/exports/[0-9a-f-]+)"', done.text)
    assert len(links) == 2
    download = await client.get(links[0])
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment")
    assert len(download.content) > 0
    downloaded = (
        await client.get(f"/v1/requests/{dsr['id']}/events", headers=officer_headers)
    ).json()["items"][-1]
    assert downloaded["actor"] == user_id

    async with AsyncClient(
        transport=ASGITransport(app=app), base_url="http://testserver"
    ) as anonymous:
        refused = await anonymous.get(links[0])
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/console/login")
    other = await client.get(f"{base}/exports/00000000-0000-4000-8000-000000000000")
    assert other.status_code == 404


async def test_a_rectification_plan_shows_the_values_held_and_requested(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    await make_person(app)
    crm = create_demo_crm(tmp_path / "demo_crm.db")
    await register_crm(client, admin_headers, f"sqlite:///{crm}")
    dsr = await verified_request(
        client,
        officer_headers,
        officer_headers,
        type="rectification",
        subject=JANE,
        details={
            "changes": [
                {"field": "town", "current": "somewhere", "requested": "Harrogate"},
                {"field": "shoe_size", "requested": "5"},
            ]
        },
    )
    await login(client, OFFICER)
    api_plan = (await client.get(f"/v1/requests/{dsr['id']}/plan", headers=officer_headers)).json()
    [demo] = [entry for entry in api_plan["sources"] if entry["source"] == "demo_crm"]
    [town] = demo["changes"]
    planned = await client.get(f"/console/requests/{dsr['id']}", params={"plan": "1"})
    assert planned.status_code == 200
    row = (
        f'<th scope="row">town</th><td>contacts</td><td>1</td>'
        f"<td>{html.escape(str(town['current']))}</td><td>Harrogate</td>"
    )
    assert row in re.sub(r">\s+<", "><", planned.text)
    assert "Not held in demo_crm: shoe_size." in planned.text


async def test_erasure_needs_the_plan_approved_from_the_page(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    user_id = await make_person(app)
    crm = create_demo_crm(tmp_path / "demo_crm.db")
    await register_crm(client, admin_headers, f"sqlite:///{crm}")
    dsr = await verified_request(
        client, officer_headers, officer_headers, type="erasure", subject=JANE
    )
    token = await login(client, OFFICER)
    base = f"/console/requests/{dsr['id']}"
    refused = await client.post(f"{base}/actions/fulfil", data={"csrf_token": token})
    assert refused.status_code == 409 and "approval" in refused.text
    planned = await client.get(base, params={"plan": "1"})
    assert ">Approve</button>" in planned.text
    # Per table, what would be deleted, nulled, masked and kept, as the API's plan says.
    api_plan = (await client.get(f"/v1/requests/{dsr['id']}/plan", headers=officer_headers)).json()
    [demo] = [entry for entry in api_plan["sources"] if entry["source"] == "demo_crm"]
    assert "Erasure in demo_crm, per table" in planned.text
    for table in demo["tables"]:
        cells = (
            f'<th scope="row">{table["table"]}</th><td>{table["rows"]}</td>'
            f"<td>{table['deleted']}</td>"
        )
        assert cells in planned.text, table
    for kept in demo["retained"]:
        assert f"<strong>{kept['category']}</strong>" in planned.text
        assert html.escape(kept["reason"]) in planned.text
    sha = re.search(r'name="plan_sha256" value="([0-9a-f]{64})"', planned.text)
    assert sha
    approved = await client.post(
        f"{base}/approve", data={"csrf_token": token, "plan_sha256": sha.group(1)}
    )
    assert approved.status_code == 303, approved.text
    page = await client.get(base)
    assert "Approved by <strong>Olivia Officer</strong>" in page.text
    assert ">Approve</button>" not in page.text
    fetched = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert fetched["approval"]["approved_by"] == user_id
    queued = await client.post(f"{base}/actions/fulfil", data={"csrf_token": token})
    assert queued.status_code == 303
