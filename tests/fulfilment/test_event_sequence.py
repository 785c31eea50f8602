"""Events the worker writes while fulfilling carry the request's next sequence numbers, like
the events of intake and officers' actions before them."""

import uuid

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlmodel import col

from app.demo import JANE_DOE
from app.models import OutboxEvent
from app.worker import Worker
from tests.factories import verified_request
from tests.fulfilment.conftest import CrmSource, fulfil_and_wait

JANE = {"email": JANE_DOE["email"], "name": "Jane Doe", "phone": JANE_DOE["phone"]}


async def test_fulfilment_events_continue_the_requests_numbering(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    dsr = await verified_request(
        client, integration_headers, officer_headers, type="erasure", subject=JANE
    )
    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)
    assert done["status"] == "completed"
    async with app.state.sessionmaker() as session:
        payloads = (
            await session.execute(
                select(OutboxEvent.payload).where(
                    col(OutboxEvent.request_id) == uuid.UUID(dsr["id"])
                )
            )
        ).scalars()
        numbered = sorted((p["data"]["sequence"], p["type"]) for p in payloads)
    assert numbered == [
        (1, "request.received"),
        (2, "request.verified"),
        (3, "subject.erased"),
        (4, "subject.suppressed"),
        (5, "request.completed"),
    ]
