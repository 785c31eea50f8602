"""Fulfilment through an ``http`` source (the REST contract) beside the demo CRM."""

import io
import zipfile
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update

from app.core.config import Settings
from app.core.time import utcnow
from app.models import FulfilmentJob
from app.worker import Worker
from tests.factories import verified_request
from tests.fulfilment.conftest import CrmSource, drain, fulfil_and_wait
from tests.http_source_server import JANE, HttpSourceServer

SUBJECT = {"email": JANE["email"], "name": JANE["name"]}
FORMULA = "=cmd|'/c calc'!A1"


@pytest.fixture
async def shop(
    client: AsyncClient, admin_headers: dict[str, str]
) -> AsyncIterator[HttpSourceServer]:
    with HttpSourceServer(token="shop-token", page_size=1) as server:
        body = {
            "name": "shop",
            "kind": "http",
            "base_url": server.base_url,
            "auth_token": "shop-token",
        }
        response = await client.post("/v1/data-sources", headers=admin_headers, json=body)
        assert response.status_code == 201, response.text
        yield server


async def test_access_pages_through_the_http_source_and_neutralises_formulas(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    shop: HttpSourceServer,
    worker: Worker,
) -> None:
    jane = next(row for row in shop.tables["contacts"].rows if row["customer_id"] == "C-1001")
    jane["segment"] = FORMULA
    dsr = await verified_request(client, integration_headers, officer_headers, subject=SUBJECT)

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)

    assert done["status"] == "completed", done["fulfilment"]
    assert done["fulfilment"]["result"]["sources"] == ["demo_crm", "shop"]
    # page_size 1: several /access calls, each with the bearer token.
    calls = shop.requests_to("/access")
    assert len(calls) > 2
    assert all(call.headers["authorization"] == "Bearer shop-token" for call in calls)
    export = await client.get(
        f"/v1/requests/{dsr['id']}/export", params={"format": "csv"}, headers=officer_headers
    )
    marketing = zipfile.ZipFile(io.BytesIO(export.content)).read("marketing.csv").decode()
    assert f"'{FORMULA}" in marketing
    assert f"\n{FORMULA}" not in marketing and f",{FORMULA}" not in marketing


async def test_erasure_reaches_the_http_source(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    shop: HttpSourceServer,
    worker: Worker,
) -> None:
    dsr = await verified_request(
        client, integration_headers, officer_headers, type="erasure", subject=SUBJECT
    )

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)

    assert done["status"] == "completed", done["fulfilment"]
    assert shop.rows_of("contacts", JANE) == []
    sources = {item["source"] for item in done["fulfilment"]["result"]["sources"]}
    assert sources == {"demo_crm", "shop"}


async def test_access_after_erasure_discloses_what_each_source_kept_and_why(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    shop: HttpSourceServer,
    worker: Worker,
) -> None:
    erasure = await verified_request(
        client, integration_headers, officer_headers, type="erasure", subject=SUBJECT
    )
    assert (await fulfil_and_wait(client, officer_headers, erasure["id"], worker))["status"] == (
        "completed"
    )
    # By phone: the erasure named her by email only.
    dsr = await verified_request(
        client, integration_headers, officer_headers, subject={"phone": JANE["phone"]}
    )

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)

    assert done["status"] == "completed", done["fulfilment"]
    pack = (
        await client.get(
            f"/v1/requests/{dsr['id']}/export", params={"format": "json"}, headers=officer_headers
        )
    ).json()
    orders = {
        (block["source"], row["order_id"])
        for block in pack["tables"]
        if block["table"] == "orders"
        for row in block["rows"]
    }
    assert orders == {
        ("demo_crm", "O-100001"),
        ("demo_crm", "O-100002"),
        ("shop", "O-1"),
        ("shop", "O-2"),
    }
    kept = {(item["source"], item["category"]) for item in pack["retained_after_erasure"]}
    assert kept == {("demo_crm", "financial"), ("shop", "financial")}
    assert all("HMRC" in item["reason"] for item in pack["retained_after_erasure"])


async def test_an_unreachable_source_is_retried_then_succeeds(
    app: FastAPI,
    client: AsyncClient,
    settings: Settings,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    shop: HttpSourceServer,
) -> None:
    patient = Worker(
        settings.model_copy(update={"fulfilment_max_attempts": 3}), app.state.sessionmaker
    )
    try:
        shop.fail("/erase", status=503)
        dsr = await verified_request(
            client, integration_headers, officer_headers, type="erasure", subject=SUBJECT
        )
        response = await client.post(f"/v1/requests/{dsr['id']}/fulfil", headers=officer_headers)
        assert response.status_code == 200
        await drain(patient)

        waiting = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
        assert waiting["status"] == "in_progress"
        assert waiting["fulfilment"]["status"] == "queued"
        assert waiting["fulfilment"]["progress"]["step"] == "waiting to retry"
        assert "shop" in waiting["fulfilment"]["error"]
        # The backoff has passed.
        async with app.state.sessionmaker() as session:
            await session.execute(update(FulfilmentJob).values(next_attempt_at=utcnow()))
            await session.commit()
        await drain(patient)
    finally:
        await patient.close()

    done = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert done["status"] == "completed", done["fulfilment"]
    assert shop.rows_of("contacts", JANE) == []
    assert len(shop.requests_to("/erase")) == 2
