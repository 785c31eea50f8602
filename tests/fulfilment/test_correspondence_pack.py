"""The subject's correspondence about a request in its access pack (the register declares the
``correspondence`` category): that request's thread only, never another request's."""

import io
import zipfile

from fastapi import FastAPI
from httpx import AsyncClient

from app.core.time import utcnow
from app.demo import JANE_DOE
from app.worker import Worker
from tests.factories import verified_request
from tests.fulfilment.conftest import CrmSource, fulfil_and_wait

JANE = {"email": JANE_DOE["email"], "name": "Jane Doe"}
QUESTION = "Which of your two accounts do you mean?"
ANSWER = "The one I opened in 2019."
OTHER = "A message about a different request."


async def test_access_pack_holds_this_requests_thread_only(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    dsr = await verified_request(client, integration_headers, officer_headers, subject=JANE)
    other = await verified_request(client, integration_headers, officer_headers, subject=JANE)
    messages = f"/v1/requests/{dsr['id']}/messages"
    asked = await client.post(
        messages, headers=officer_headers, json={"kind": "clarification", "text": QUESTION}
    )
    assert asked.status_code == 201, asked.text
    replied = await client.post(
        messages + "/reply",
        headers=officer_headers,
        json={"text": ANSWER, "received_at": utcnow().isoformat()},
    )
    assert replied.status_code == 201, replied.text
    told = await client.post(
        f"/v1/requests/{other['id']}/messages",
        headers=officer_headers,
        json={"kind": "information", "text": OTHER},
    )
    assert told.status_code == 201, told.text

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)
    assert done["status"] == "completed", done["fulfilment"]
    response = await client.get(
        f"/v1/requests/{dsr['id']}/export", params={"format": "json"}, headers=officer_headers
    )
    assert response.status_code == 200
    document = response.json()
    (block,) = [b for b in document["tables"] if b["table"] == "correspondence"]
    assert block["source"] == "privacy_team"
    assert {column["category"] for column in block["columns"].values()} == {"correspondence"}
    assert [(row["direction"], row["kind"], row["text"]) for row in block["rows"]] == [
        ("from us to you", "clarification", QUESTION),
        ("from you to us", "reply", ANSWER),
    ]
    assert OTHER not in response.text
    categories = {c["name"] for c in document["supplementary_information"]["categories"]}
    assert "correspondence" in categories
    purposes = {p["activity"] for p in document["supplementary_information"]["purposes"]}
    assert "rights_requests" in purposes

    # The CSV pack has the thread as its own category file.
    csv = await client.get(
        f"/v1/requests/{dsr['id']}/export", params={"format": "csv"}, headers=officer_headers
    )
    assert csv.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(csv.content))
    thread = archive.read("correspondence.csv").decode()
    assert QUESTION in thread and ANSWER in thread and OTHER not in thread
