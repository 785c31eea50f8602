"""Approval of the fulfilment plan: DSR_APPROVAL_REQUIRED, the plan hash, four eyes, and the
result set beside the approved counts."""

import json
import sqlite3
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.demo import JANE_DOE
from app.enums import RequestType
from app.worker import Worker
from tests.conftest import _asyncpg_dsn, get_token, new_client
from tests.factories import verified_request
from tests.fulfilment.conftest import CrmSource, audit_entries, drain

JANE = {"email": JANE_DOE["email"], "name": "Jane Doe", "phone": JANE_DOE["phone"]}
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def approval_required(settings: Settings) -> Settings:
    """Erasures wait for an approval (the app and the worker share these settings)."""
    settings.approval_required = [RequestType.ERASURE]
    return settings


async def add_order(crm: CrmSource, order_id: str) -> None:
    """Jane places another order in the CRM (the data changes after the approval)."""
    values = (order_id, JANE_DOE["customer_id"], "2026-12-01", "GBP", "9 New Road")
    if crm.kind == "sqlite":
        connection = sqlite3.connect(make_url(crm.url).database or "")
        with connection:
            connection.execute(
                "INSERT INTO orders (order_id, customer_id, order_date, currency, "
                "delivery_address, amount) VALUES (?, ?, ?, ?, ?, 12.50)",
                values,
            )
        connection.close()
        return
    connection = await asyncpg.connect(_asyncpg_dsn(crm.url))
    try:
        await connection.execute(
            "INSERT INTO orders (order_id, customer_id, order_date, currency, delivery_address, "
            "amount) VALUES ($1, $2, $3, $4, $5, $6)",
            *values,
            Decimal("12.50"),
        )
    finally:
        await connection.close()


async def fulfil(client: AsyncClient, headers: dict[str, str], request_id: str) -> Any:
    return await client.post(f"/v1/requests/{request_id}/fulfil", headers=headers)


async def approve(
    client: AsyncClient, headers: dict[str, str], request_id: str, **body: Any
) -> Any:
    return await client.post(f"/v1/requests/{request_id}/approve", headers=headers, json=body)


async def plan_of(client: AsyncClient, headers: dict[str, str], request_id: str) -> Any:
    response = await client.get(f"/v1/requests/{request_id}/plan", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_fulfil_waits_for_approval_of_exactly_the_plan_looked_at(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    approval_required: Settings,
    crm: CrmSource,
    worker: Worker,
) -> None:
    dsr = await verified_request(
        client, integration_headers, officer_headers, type="erasure", subject=JANE
    )

    refused = await fulfil(client, officer_headers, dsr["id"])

    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith(PROBLEM_JSON)
    assert refused.json()["title"] == "Approval required"
    assert "/approve" in refused.json()["detail"]
    plan = await plan_of(client, officer_headers, dsr["id"])
    stale = await approve(client, officer_headers, dsr["id"], plan_sha256="0" * 64)
    assert stale.status_code == 409 and stale.json()["title"] == "Plan changed"
    assert stale.json()["plan_sha256"] == plan["plan_sha256"]
    malformed = await approve(client, officer_headers, dsr["id"], plan_sha256="not-a-hash")
    assert malformed.status_code == 422
    by_integration = await approve(client, integration_headers, dsr["id"])
    assert by_integration.status_code == 403

    approved = await approve(client, officer_headers, dsr["id"], plan_sha256=plan["plan_sha256"])

    assert approved.status_code == 200, approved.text
    approval = approved.json()["approval"]
    assert approval["plan_sha256"] == plan["plan_sha256"]
    assert approval["counts"] == plan["counts"]
    (audited,) = await audit_entries(app, "request.approved")
    assert audited == {"plan_sha256": plan["plan_sha256"], "counts": plan["counts"]}
    assert JANE_DOE["email"] not in json.dumps(audited)

    response = await fulfil(client, officer_headers, dsr["id"])
    assert response.status_code == 200, response.text
    (requested,) = await audit_entries(app, "fulfilment.requested")
    assert requested["approved_plan_sha256"] == plan["plan_sha256"]
    await drain(worker)
    done = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert done["status"] == "completed", done["fulfilment"]
    result = done["fulfilment"]["result"]
    assert result["differs_from_approved_plan"] is False
    assert result["approved_counts"] == result["actual_counts"]
    assert result["approved_counts"]["demo_crm/contacts/deleted"] == 1
    assert result["approved_plan_sha256"] == plan["plan_sha256"]


async def test_data_changed_between_approval_and_fulfilment_is_shown(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    approval_required: Settings,
    crm: CrmSource,
    worker: Worker,
) -> None:
    dsr = await verified_request(
        client, integration_headers, officer_headers, type="erasure", subject=JANE
    )
    approved = await approve(client, officer_headers, dsr["id"])
    assert approved.status_code == 200, approved.text
    await add_order(crm, f"O-{uuid.uuid4().hex[:8]}")

    response = await fulfil(client, officer_headers, dsr["id"])
    assert response.status_code == 200, response.text
    await drain(worker)

    done = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert done["status"] == "completed", done["fulfilment"]
    result = done["fulfilment"]["result"]
    # Fulfilment acted on the data as it then was: one order more than approved.
    assert result["differs_from_approved_plan"] is True
    approved_orders = result["approved_counts"]["demo_crm/orders/anonymised"]
    assert result["actual_counts"]["demo_crm/orders/anonymised"] == approved_orders + 1
    kept = [row for row in await crm.rows("orders") if row["customer_id"] == "C-1001"]
    assert len(kept) == approved_orders + 1
    assert all(row["delivery_address"] is None for row in kept)


async def test_approval_only_while_in_progress(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    source = {"name": "payroll", "kind": "task", "assignee_client_id": "test-admin"}
    response = await client.post("/v1/data-sources", headers=admin_headers, json=source)
    assert response.status_code == 201, response.text
    created = await client.post(
        "/v1/requests",
        headers=integration_headers,
        json={"type": "erasure", "subject": JANE, "channel": "email"},
    )
    assert created.status_code == 201, created.text

    early = await approve(client, officer_headers, created.json()["id"])

    assert early.status_code == 409
    assert early.json()["current_status"] == "awaiting_verification"


async def officer(client: AsyncClient, admin_headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    client_id, secret = await new_client(client, admin_headers, "officer")
    return client_id, {"Authorization": f"Bearer {await get_token(client, client_id, secret)}"}


async def test_four_eyes_refuses_who_owns_assigned_or_last_acted(
    client: AsyncClient,
    integration_headers: dict[str, str],
    admin_headers: dict[str, str],
    approval_required: Settings,
) -> None:
    approval_required.approval_four_eyes = True
    source = {"name": "payroll", "kind": "task", "assignee_client_id": "test-admin"}
    response = await client.post("/v1/data-sources", headers=admin_headers, json=source)
    assert response.status_code == 201, response.text
    _first, verifier = await officer(client, admin_headers)
    _assigner_id, assigner = await officer(client, admin_headers)
    owner_id, owner = await officer(client, admin_headers)
    _fourth, extender = await officer(client, admin_headers)
    dsr = await verified_request(
        client, integration_headers, verifier, type="erasure", subject=JANE
    )
    assigned = await client.post(
        f"/v1/requests/{dsr['id']}/assign", headers=assigner, json={"assignee": owner_id}
    )
    assert assigned.status_code == 200, assigned.text
    extended = await client.post(
        f"/v1/requests/{dsr['id']}/extend", headers=extender, json={"reason": "Many systems"}
    )
    assert extended.status_code == 200, extended.text

    by_owner = await approve(client, owner, dsr["id"])
    by_assigner = await approve(client, assigner, dsr["id"])
    by_last_actor = await approve(client, extender, dsr["id"])

    assert by_owner.status_code == 409
    assert by_owner.json()["rule"] == "owns_the_case"

    assert by_assigner.status_code == 409
    assert by_assigner.json()["rule"] == "assigned_the_case"
    assert "assigned" in by_assigner.json()["detail"]
    assert by_last_actor.status_code == 409
    assert by_last_actor.json()["rule"] == "last_acted"
    assert by_last_actor.json()["last_action"] == "request.extended"
    # The integration's own actions (it submitted the request) are no officer's.
    approved = await approve(client, verifier, dsr["id"])
    assert approved.status_code == 200, approved.text
    assert approved.json()["approval"]["approved_by"] == _first
