"""The fulfilment plan: a dry run against the demo CRM and an http source, changing nothing."""

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from app.demo import JANE_DOE, load_dataset_map
from app.worker import Worker
from tests.factories import create_request, verified_request
from tests.fulfilment.conftest import CrmSource, fulfil_and_wait, register_crm
from tests.http_source_server import HttpSourceServer

JANE = {"email": JANE_DOE["email"], "name": "Jane Doe", "phone": JANE_DOE["phone"]}
CRM_TABLES = list(load_dataset_map()["tables"])


async def crm_snapshot(crm: CrmSource) -> dict[str, list[dict[str, Any]]]:
    """Every row of every mapped table, to prove a plan changed nothing."""
    return {table: await crm.rows(table) for table in CRM_TABLES}


async def jane_rows(crm: CrmSource, table: str) -> list[dict[str, Any]]:
    return [row for row in await crm.rows(table) if row["customer_id"] == JANE_DOE["customer_id"]]


async def get_plan(client: AsyncClient, headers: dict[str, str], request_id: str) -> Any:
    response = await client.get(f"/v1/requests/{request_id}/plan", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def source_entry(plan: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in plan["sources"] if entry["source"] == name)


async def test_erasure_plan_counts_equal_what_fulfilment_then_deletes(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    before = await crm_snapshot(crm)
    jane_before = {table: len(await jane_rows(crm, table)) for table in CRM_TABLES}
    dsr = await verified_request(
        client, integration_headers, officer_headers, type="erasure", subject=JANE
    )

    plan = await get_plan(client, officer_headers, dsr["id"])

    assert await crm_snapshot(crm) == before, "the plan changed the source"
    demo = source_entry(plan, "demo_crm")
    assert demo["status"] == "planned" and demo["kind"] == "sql"
    tables = {table["table"]: table for table in demo["tables"]}
    # Every table where Jane has rows, with her rows counted.
    assert {name: table["rows"] for name, table in tables.items()} == {
        name: count for name, count in jane_before.items() if count
    }
    orders = tables["orders"]
    assert orders["deleted"] == 0 and orders["anonymised"] == orders["retained"] == orders["rows"]
    assert "delivery_address" in orders["nulled_columns"]
    assert "amount" in orders["retained_columns"]
    assert tables["contacts"]["deleted"] == 1
    (kept,) = demo["retained"]
    assert kept["category"] == "financial" and "HMRC" in kept["reason"]
    assert kept["tables"] == ["orders"]
    assert plan["suppression"] == {
        "channels": ["email", "phone", "post", "sms"],
        "reason": "erasure",
    }
    assert plan["counts"]["deleted"] == sum(t["deleted"] for t in tables.values())
    assert len(plan["plan_sha256"]) == 64 and plan["generated_at"]
    # Planned twice on the same data: the same plan, the same hash.
    again = await get_plan(client, officer_headers, dsr["id"])
    assert again["plan_sha256"] == plan["plan_sha256"]

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)

    assert done["status"] == "completed", done["fulfilment"]
    (erased,) = done["fulfilment"]["result"]["sources"]
    planned_deleted = {name: t["deleted"] for name, t in tables.items() if t["deleted"]}
    planned_anonymised = {name: t["anonymised"] for name, t in tables.items() if t["anonymised"]}
    assert erased["deleted_rows"] == planned_deleted
    assert erased["anonymised_rows"] == planned_anonymised
    # And the rows really went: what the plan said would be deleted is gone, nothing more.
    for name in CRM_TABLES:
        gone = len(before[name]) - len(await crm.rows(name))
        assert gone == planned_deleted.get(name, 0), name
    kept_orders = await jane_rows(crm, "orders")
    assert len(kept_orders) == orders["rows"]
    assert all(order["delivery_address"] is None for order in kept_orders)


async def test_rectification_plan_shows_current_and_requested_values(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    jane = (await jane_rows(crm, "contacts"))[0]
    before = await crm_snapshot(crm)
    dsr = await verified_request(
        client,
        integration_headers,
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

    plan = await get_plan(client, officer_headers, dsr["id"])

    demo = source_entry(plan, "demo_crm")
    assert demo["changes"] == [
        {
            "field": "town",
            "table": "contacts",
            "rows": 1,
            "current": jane["town"],
            "requested": "Harrogate",
        }
    ]
    assert demo["not_held"] == ["shoe_size"]
    assert plan["counts"] == {"fields": 1, "rows": 1}
    assert await crm_snapshot(crm) == before
    # The subject's values are for the officer reading the plan: never logged.
    assert jane["town"] not in caplog.text and "Harrogate" not in caplog.text


async def test_restriction_plan_counts_the_rows_to_flag(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
) -> None:
    before = await crm_snapshot(crm)
    dsr = await verified_request(
        client,
        integration_headers,
        officer_headers,
        type="restriction",
        subject=JANE,
        details={"reason": "contesting accuracy"},
    )

    plan = await get_plan(client, officer_headers, dsr["id"])

    assert source_entry(plan, "demo_crm")["flagged"] == {
        "table": "contacts",
        "rows": 1,
        "supported": True,
    }
    assert plan["counts"] == {"flagged": 1}
    assert plan["suppression"]["channels"] == ["email", "phone", "post", "sms"]
    assert await crm_snapshot(crm) == before


async def test_access_plan_counts_records_per_category_as_the_export_holds_them(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    orders = len(await jane_rows(crm, "orders"))
    dsr = await verified_request(client, integration_headers, officer_headers, subject=JANE)

    plan = await get_plan(client, officer_headers, dsr["id"])

    demo = source_entry(plan, "demo_crm")
    assert demo["records_by_table"]["contacts"] == 1
    assert demo["records_by_table"]["orders"] == orders
    by_category = demo["records_by_category"]
    assert by_category["financial"] == orders
    # A link (orders.customer_id, ...) is no fact about the person: only contacts count.
    assert by_category["identity"] == 1
    assert "special_category" in by_category
    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)
    assert done["fulfilment"]["result"]["records"] == plan["counts"]["records"]


async def test_plan_is_for_officers_and_open_requests_and_lists_task_sources(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    response = await client.post(
        "/v1/data-sources",
        headers=admin_headers,
        json={
            "name": "payroll",
            "kind": "task",
            "assignee_client_id": "test-admin",
            "instructions": "Close the payroll record",
        },
    )
    assert response.status_code == 201, response.text
    dsr = await create_request(client, integration_headers, type="erasure", subject=JANE)
    forbidden = await client.get(f"/v1/requests/{dsr['id']}/plan", headers=integration_headers)
    assert forbidden.status_code == 403
    missing = await client.get(f"/v1/requests/{uuid.uuid4()}/plan", headers=officer_headers)
    assert missing.status_code == 404

    plan = await get_plan(client, officer_headers, dsr["id"])

    assert plan["sources"] == [
        {
            "source": "payroll",
            "kind": "task",
            "status": "not_previewable",
            "detail": plan["sources"][0]["detail"],
            "would_ask": {
                "request_type": "erasure",
                "assignee": "test-admin",
                "instructions": "Close the payroll record",
            },
        }
    ]
    cancel = await client.post(f"/v1/requests/{dsr['id']}/cancel", headers=officer_headers)
    assert cancel.status_code == 200, cancel.text
    closed = await client.get(f"/v1/requests/{dsr['id']}/plan", headers=officer_headers)
    assert closed.status_code == 409
    assert closed.headers["content-type"].startswith("application/problem+json")
    assert closed.json()["title"] == "Request closed"


@pytest.fixture
async def shop(
    client: AsyncClient, admin_headers: dict[str, str]
) -> AsyncIterator[HttpSourceServer]:
    with HttpSourceServer(token="shop-token") as server:
        body = {
            "name": "shop",
            "kind": "http",
            "base_url": server.base_url,
            "auth_token": "shop-token",
        }
        response = await client.post("/v1/data-sources", headers=admin_headers, json=body)
        assert response.status_code == 201, response.text
        yield server


async def test_http_source_plan_changes_nothing_and_a_failing_source_is_marked(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    shop: HttpSourceServer,
) -> None:
    shop_before = {name: shop.rows_of(name) for name in shop.tables}
    dsr = await verified_request(
        client, integration_headers, officer_headers, type="erasure", subject=JANE
    )

    plan = await get_plan(client, officer_headers, dsr["id"])

    entry = source_entry(plan, "shop")
    assert entry["status"] == "planned"
    tables = {table["table"]: table for table in entry["tables"]}
    assert tables["contacts"]["deleted"] == 1
    assert tables["orders"]["anonymised"] == tables["orders"]["retained"] == 2
    assert entry["retained"][0]["category"] == "financial"
    assert {name: shop.rows_of(name) for name in shop.tables} == shop_before
    assert shop.requests_to("/erase") == []
    (call,) = shop.requests_to("/plan")
    assert call.json["request_type"] == "erasure"
    assert call.headers["authorization"] == "Bearer shop-token"

    # A source without the optional POST /plan cannot be previewed; the others still are.
    shop.offers_plan = False
    plan = await get_plan(client, officer_headers, dsr["id"])
    assert source_entry(plan, "shop")["status"] == "not_previewable"
    assert source_entry(plan, "demo_crm")["status"] == "planned"

    # An unreachable source: marked error, with a detail naming no person, no 500.
    shop.offers_plan = True
    shop.fail("/plan", status=503)
    plan = await get_plan(client, officer_headers, dsr["id"])
    failed = source_entry(plan, "shop")
    assert failed["status"] == "error"
    assert "503" in failed["detail"] and "jane" not in failed["detail"].lower()
    assert source_entry(plan, "demo_crm")["status"] == "planned"
    assert "jane" not in json.dumps(failed).lower()


async def test_a_source_gone_missing_is_an_error_and_direct_marketing_only_suppresses(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    admin_headers: dict[str, str],
    demo_crm_file: Path,
) -> None:
    await register_crm(client, admin_headers, f"sqlite:///{demo_crm_file}", name="old_crm")
    await asyncio.to_thread(demo_crm_file.unlink)
    erasure = await verified_request(
        client, integration_headers, officer_headers, type="erasure", subject=JANE
    )

    plan = await get_plan(client, officer_headers, erasure["id"])

    (gone,) = plan["sources"]
    assert gone["status"] == "error" and "does not exist" in gone["detail"]
    refused = await client.post(
        f"/v1/requests/{erasure['id']}/approve", headers=officer_headers, json={}
    )
    assert refused.status_code == 409 and refused.json()["title"] == "Plan incomplete"
    objection = await verified_request(
        client,
        integration_headers,
        officer_headers,
        type="objection",
        subject=JANE,
        details={"scope": "direct_marketing", "channels": ["sms", "email"]},
    )
    plan = await get_plan(client, officer_headers, objection["id"])
    assert plan["sources"] == []
    assert plan["suppression"] == {"channels": ["email", "sms"], "reason": "objection"}
    assert "absolute" in plan["notes"][0]
