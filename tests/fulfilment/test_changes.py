"""Erasure, rectification and restriction end to end against the demo CRM source."""

import json

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from app.demo import JANE_DOE
from app.models import MailMessage
from app.worker import Worker
from tests.factories import verified_request
from tests.fulfilment.conftest import (
    CrmSource,
    audit_entries,
    drain,
    fulfil_and_wait,
    outbox_payloads,
)

JANE = {"email": JANE_DOE["email"], "name": "Jane Doe", "phone": JANE_DOE["phone"]}
# Every value that identifies Jane in the demo CRM (contacts row and order addresses).
RETAINED_TABLES = {"orders"}


async def test_erasure_leaves_no_identity_outside_retained_tables(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    jane = next(row for row in await crm.rows("contacts") if row["customer_id"] == "C-1001")
    identity_values = {
        str(jane[column])
        for column in ("email", "phone", "first_name", "last_name", "address_line1", "postcode")
        if jane[column]
    } | {"C-1001"}
    others_before = len(await crm.rows("contacts")) - 1
    orders_before = [o for o in await crm.rows("orders") if o["customer_id"] == "C-1001"]
    dsr = await verified_request(
        client, integration_headers, officer_headers, type="erasure", subject=JANE
    )

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)

    assert done["status"] == "completed"
    result = done["fulfilment"]["result"]
    assert [item["category"] for item in result["retained"]] == ["financial"]
    assert "HMRC" in result["retained"][0]["reason"]
    assert result["suppressed_channels"] == ["email", "phone", "post", "sms"]
    assert "HMRC" in done["completion_summary"]
    for table in (
        "contacts",
        "marketing_preferences",
        "call_recordings",
        "survey_responses",
        "event_attendance",
        "web_activity",
    ):
        dumped = json.dumps(await crm.rows(table), default=str)
        leaked = [value for value in identity_values if value in dumped]
        assert leaked == [], f"{table} still holds {len(leaked)} of Jane's identity values"
    assert len(await crm.rows("contacts")) == others_before
    # Financial records are kept (HMRC), their delivery address is not.
    orders_after = [o for o in await crm.rows("orders") if o["customer_id"] == "C-1001"]
    assert len(orders_after) == len(orders_before) > 0
    assert all(order["delivery_address"] is None for order in orders_after)

    check = await client.post(
        "/v1/suppressions/check", headers=integration_headers, json={"email": JANE_DOE["email"]}
    )
    assert check.json() == {"suppressed": True, "channels": ["email", "phone", "post", "sms"]}
    (erased,) = await outbox_payloads(app, "subject.erased")
    assert erased["data"]["erasure"]["retained_categories"] == ["financial"]
    assert len(await outbox_payloads(app, "subject.suppressed")) == 1
    for payload in [erased, *await outbox_payloads(app, "subject.suppressed")]:
        assert not any(value in json.dumps(payload) for value in identity_values)


async def test_rectification_changes_the_source_and_audits_before_and_after(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    jane = next(row for row in await crm.rows("contacts") if row["customer_id"] == "C-1001")
    dsr = await verified_request(
        client,
        integration_headers,
        officer_headers,
        type="rectification",
        subject=JANE,
        details={
            "changes": [
                {"field": "town", "current": jane["town"], "requested": "Harrogate"},
                {"field": "shoe_size", "requested": "5"},
            ]
        },
    )

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)

    assert done["status"] == "completed"
    result = done["fulfilment"]["result"]
    assert [(item["field"], item["rows"]) for item in result["applied"]] == [("town", 1)]
    assert result["not_held"] == ["shoe_size"]
    assert "Harrogate" not in json.dumps(result)
    after = next(row for row in await crm.rows("contacts") if row["customer_id"] == "C-1001")
    assert after["town"] == "Harrogate"
    (audit,) = await audit_entries(app, "subject.rectification_applied")
    (change,) = audit["changes"]
    assert change["after"] == "Harrogate"
    assert jane["town"] in json.dumps(change["before"])
    (event,) = await outbox_payloads(app, "subject.rectified")
    assert event["data"]["rectification"] == {"fields": ["town"]}
    assert "Harrogate" not in json.dumps(event)


async def test_restriction_flags_the_subject_and_lifting_tells_them_first(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    dsr = await verified_request(
        client,
        integration_headers,
        officer_headers,
        type="restriction",
        subject=JANE,
        details={"reason": "contesting accuracy"},
    )

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)

    assert done["status"] == "completed" and done["restricted"] is True
    flags = {row["customer_id"]: row["processing_restricted"] for row in await crm.rows("contacts")}
    assert flags["C-1001"] == 1
    assert sum(flags.values()) == 1
    assert len(await outbox_payloads(app, "subject.restricted")) == 1
    check = await client.post(
        "/v1/suppressions/check", headers=integration_headers, json={"email": JANE_DOE["email"]}
    )
    assert check.json()["suppressed"] is True

    lift = await client.post(
        f"/v1/requests/{dsr['id']}/lift-restriction",
        headers=officer_headers,
        json={"reason": "Accuracy verified against the signed contract."},
    )
    assert lift.status_code == 200, lift.text
    assert lift.json()["restricted"] is False
    async with app.state.sessionmaker() as session:
        kinds = [kind for (kind,) in await session.execute(select(MailMessage.kind))]
    assert "restriction_lifted" in kinds
    await drain(worker)
    flags = {row["customer_id"]: row["processing_restricted"] for row in await crm.rows("contacts")}
    assert flags["C-1001"] == 0
    assert len(await outbox_payloads(app, "subject.restriction_lifted")) == 1
    check = await client.post(
        "/v1/suppressions/check", headers=integration_headers, json={"email": JANE_DOE["email"]}
    )
    assert check.json()["suppressed"] is False
    again = await client.post(
        f"/v1/requests/{dsr['id']}/lift-restriction",
        headers=officer_headers,
        json={"reason": "twice"},
    )
    assert again.status_code == 409
