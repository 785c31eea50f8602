"""After an erasure: what was kept stays findable (Art. 15), and every identity is suppressed.

The erasure deletes Jane's contact row, the only row that tied her email and phone to her
orders; the orders are kept for HMRC. Later requests by any of her identities must still
reach them, with the reason they were kept.
"""

import json
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text

from app.demo import JANE_DOE
from app.worker import Worker
from tests.factories import verified_request
from tests.fulfilment.conftest import CrmSource, fulfil_and_wait

JANE_ORDERS = ["O-100001", "O-100002"]
# The erasure names Jane by email alone: her phone and customer id are found in her rows.
ERASE_BY_EMAIL = {"email": JANE_DOE["email"], "name": "Jane Doe"}


async def erase_jane(
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
    worker: Worker,
) -> dict[str, Any]:
    dsr = await verified_request(
        client, integration_headers, officer_headers, type="erasure", subject=ERASE_BY_EMAIL
    )
    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)
    assert done["status"] == "completed", done
    return done


async def pack_of(
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
    worker: Worker,
    *,
    subject: dict[str, str],
    type: str = "access",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fulfil a request for ``subject``; answers the request and its JSON pack."""
    dsr = await verified_request(
        client, integration_headers, officer_headers, type=type, subject=subject
    )
    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)
    assert done["status"] == "completed", done["fulfilment"]
    response = await client.get(
        f"/v1/requests/{dsr['id']}/export", params={"format": "json"}, headers=officer_headers
    )
    assert response.status_code == 200, response.text
    return done, response.json()


async def test_access_after_erasure_finds_the_retained_orders_by_every_identity(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    erasure = await erase_jane(client, integration_headers, officer_headers, worker)
    assert [item["category"] for item in erasure["fulfilment"]["result"]["retained"]] == [
        "financial"
    ]
    assert [o for o in await crm.rows("contacts") if o["customer_id"] == "C-1001"] == []

    for subject in (
        {"email": JANE_DOE["email"]},
        {"phone": JANE_DOE["phone"]},
        {"customer_id": JANE_DOE["customer_id"]},
    ):
        done, pack = await pack_of(
            client, integration_headers, officer_headers, worker, subject=subject
        )
        kind = next(iter(subject))
        tables = {block["table"]: block["rows"] for block in pack["tables"]}
        assert set(tables) == {"orders"}, f"by {kind}: {sorted(tables)}"
        assert sorted(row["order_id"] for row in tables["orders"]) == JANE_ORDERS, f"by {kind}"
        assert {row["billing_name"] for row in tables["orders"]} == {"Jane Doe"}
        assert done["fulfilment"]["result"]["records"] == 2, f"by {kind}"
        # The pack says why these records outlived the erasure.
        (kept,) = pack["retained_after_erasure"]
        assert kept["erasure_request_id"] == erasure["id"]
        assert (kept["source"], kept["tables"]) == ("demo_crm", ["orders"])
        assert kept["category"] == "financial" and "HMRC" in kept["reason"]


async def test_portability_after_erasure_carries_the_retained_orders(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    await erase_jane(client, integration_headers, officer_headers, worker)

    _, pack = await pack_of(
        client,
        integration_headers,
        officer_headers,
        worker,
        subject={"phone": JANE_DOE["phone"]},
        type="portability",
    )

    tables = {block["table"]: block["rows"] for block in pack["tables"]}
    assert sorted(row["order_id"] for row in tables["orders"]) == JANE_ORDERS
    assert "amount" in tables["orders"][0] and "customer_id" not in tables["orders"][0]


async def test_the_retained_index_holds_no_identity_in_plaintext(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    await erase_jane(client, integration_headers, officer_headers, worker)

    async with app.state.sessionmaker() as session:
        identities = (await session.execute(text("SELECT * FROM erasure_identities"))).all()
        records = (await session.execute(text("SELECT * FROM retained_records"))).all()
    # Email, phone and customer id, each as a keyed hash.
    assert sorted(row.identity_kind for row in identities) == ["customer_id", "email", "phone"]
    assert sorted(row.record_key for row in records) == JANE_ORDERS
    dumped = json.dumps([list(row) for row in [*identities, *records]], default=str)
    for value in (JANE_DOE["email"], JANE_DOE["phone"], JANE_DOE["customer_id"], "Jane"):
        assert value.lower() not in dumped.lower()


async def test_erasure_suppresses_the_phone_found_in_the_erased_rows(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    unrelated = next(row for row in await crm.rows("contacts") if row["customer_id"] == "C-1002")

    await erase_jane(client, integration_headers, officer_headers, worker)

    for identity in ({"email": JANE_DOE["email"]}, {"phone": JANE_DOE["phone"]}):
        check = await client.post(
            "/v1/suppressions/check", headers=integration_headers, json=identity
        )
        assert check.json() == {
            "suppressed": True,
            "channels": ["email", "phone", "post", "sms"],
        }, identity
    # Nobody else's identities are touched.
    for identity in ({"email": unrelated["email"]}, {"phone": unrelated["phone"]}):
        if next(iter(identity.values())) is None:
            continue
        check = await client.post(
            "/v1/suppressions/check", headers=integration_headers, json=identity
        )
        assert check.json()["suppressed"] is False
