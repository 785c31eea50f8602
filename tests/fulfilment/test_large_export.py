"""A subject with 100,000 records is exported with bounded memory."""

import asyncio
import sqlite3
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.demo import JANE_DOE
from app.worker import Worker
from tests.factories import verified_request
from tests.fulfilment.conftest import drain, register_crm

ROWS = 100_000
# Generous against the data (100,000 orders are about 20 MB as Python objects), tight
# enough that holding the rows in memory would fail.
PEAK_LIMIT_BYTES = 40 * 1024 * 1024


def _add_orders(path: Path, count: int) -> None:
    connection = sqlite3.connect(path)
    with connection:
        connection.executemany(
            "INSERT INTO orders (order_id, customer_id, order_date, amount, currency, "
            "billing_name, billing_address, billing_postcode, delivery_address, "
            "delivery_postcode, payment_method, payment_last4) "
            "VALUES (?, 'C-1001', '2025-01-02', 19.99, 'GBP', 'Jane Doe', '1 Test Street', "
            "'QA1 1AA', '1 Test Street', 'QA1 1AA', 'card', '4242')",
            ((f"BULK-{index:06d}",) for index in range(count)),
        )
    connection.close()


async def _progress_while(
    running: asyncio.Task[None], client: AsyncClient, headers: dict[str, str], request_id: str
) -> list[dict[str, Any]]:
    seen = []
    while not running.done():
        response = await client.get(f"/v1/requests/{request_id}", headers=headers)
        if response.json()["fulfilment"]:
            seen.append(response.json()["fulfilment"])
        await asyncio.sleep(0.2)
    return seen


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_100k_record_subject_is_exported_in_bounded_memory(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    demo_crm_file: Path,
    worker: Worker,
) -> None:
    _add_orders(demo_crm_file, ROWS)
    await register_crm(client, admin_headers, f"sqlite:///{demo_crm_file}")
    dsr = await verified_request(
        client, integration_headers, officer_headers, subject={"email": JANE_DOE["email"]}
    )
    assert (
        await client.post(f"/v1/requests/{dsr['id']}/fulfil", headers=officer_headers)
    ).status_code == 200

    tracemalloc.start()
    try:
        running = asyncio.create_task(drain(worker))
        seen = await _progress_while(running, client, officer_headers, dsr["id"])
        await running
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Officers watch the work advance on the request while the worker runs it.
    assert any(
        state["status"] == "running" and 0 < state["progress"].get("records", 0) < ROWS
        for state in seen
    ), seen[-3:]

    done = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert done["status"] == "completed", done["fulfilment"]
    assert done["fulfilment"]["result"]["records"] > ROWS
    sizes = {item["format"]: item["size_bytes"] for item in done["fulfilment"]["result"]["exports"]}
    assert sizes["json"] > ROWS * 100  # the rows really are in the file
    assert peak < PEAK_LIMIT_BYTES, f"peak traced memory {peak / 1e6:.1f} MB"
