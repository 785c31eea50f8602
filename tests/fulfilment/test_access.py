"""Access and portability end to end: demo CRM source, worker, exports, links, events."""

import hashlib
import io
import json
import re
import zipfile

from fastapi import FastAPI
from httpx import AsyncClient

from app.demo import JANE_DOE
from app.worker import Worker
from tests.factories import verified_request
from tests.fulfilment.conftest import (
    CrmSource,
    audit_entries,
    drain,
    fulfil_and_wait,
    outbox_payloads,
    register_crm,
)
from tests.smtp_server import SmtpServer
from tests.webhook_receiver import Receiver

JANE = {"email": JANE_DOE["email"], "name": "Jane Doe"}


async def test_access_exports_every_record_with_the_register(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
    smtp: SmtpServer,
) -> None:
    dsr = await verified_request(client, integration_headers, officer_headers, subject=JANE)
    fulfil = await client.post(f"/v1/requests/{dsr['id']}/fulfil", headers=officer_headers)
    assert fulfil.status_code == 200, fulfil.text
    assert fulfil.json()["fulfilment"]["status"] == "queued"

    await drain(worker)

    done = (await client.get(f"/v1/requests/{dsr['id']}", headers=integration_headers)).json()
    assert done["status"] == "completed"
    assert done["fulfilment"]["status"] == "succeeded"
    exports = done["fulfilment"]["result"]["exports"]
    assert sorted(item["format"] for item in exports) == ["csv", "json"]

    # JSON: every table of Jane's, nobody else's, plus the Art. 15 information.
    response = await client.get(
        f"/v1/requests/{dsr['id']}/export", params={"format": "json"}, headers=integration_headers
    )
    assert response.status_code == 200
    document = response.json()
    assert "supplementary_information" in document
    tables = {block["table"]: block["rows"] for block in document["tables"]}
    assert set(tables) == {
        "contacts",
        "orders",
        "marketing_preferences",
        "call_recordings",
        "survey_responses",
        "event_attendance",
        "web_activity",
    }
    assert [row["email"] for row in tables["contacts"]] == [JANE_DOE["email"]]
    customer_ids = {row["customer_id"] for rows in tables.values() for row in rows}
    assert customer_ids == {JANE_DOE["customer_id"]}
    expected_orders = [o for o in await crm.rows("orders") if o["customer_id"] == "C-1001"]
    assert len(tables["orders"]) == len(expected_orders) > 0

    # CSV: a zip whose manifest carries each file's sha256.
    response = await client.get(
        f"/v1/requests/{dsr['id']}/export", params={"format": "csv"}, headers=integration_headers
    )
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    manifest = json.loads(archive.read("manifest.json"))
    for entry in manifest["files"]:
        assert hashlib.sha256(archive.read(entry["name"])).hexdigest() == entry["sha256"]
    assert "contact.csv" in archive.namelist()
    assert JANE_DOE["email"] in archive.read("contact.csv").decode()

    # export.ready announces the files without any personal data.
    (ready,) = await outbox_payloads(app, "export.ready")
    assert {item["format"] for item in ready["data"]["exports"]} == {"json", "csv"}
    assert JANE_DOE["email"] not in json.dumps(ready)

    # The subject's email carries working links.
    subjects = [str(message.message["Subject"]) for message in smtp.messages]
    assert sorted(subjects)[-2:] == [
        "Your data protection request is complete",
        "Your personal data is ready to download",
    ], subjects
    (ready_mail,) = [m for m in smtp.messages if "ready" in str(m.message["Subject"])]
    assert ready_mail.rcpt_tos == [JANE_DOE["email"]]
    links = re.findall(r"http://testserver(/v1/exports/\S+)", ready_mail.part("text/plain"))
    assert len(links) == 2
    for link in links:
        downloaded = await client.get(link)
        assert downloaded.status_code == 200
        assert downloaded.headers["cache-control"] == "no-store"


async def test_portability_holds_only_provided_data_and_is_transmitted(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    async with Receiver() as receiver:
        dsr = await verified_request(
            client,
            integration_headers,
            officer_headers,
            type="portability",
            subject=JANE,
            details={"formats": ["json"], "transmit_to": f"{receiver.url}/import"},
        )
        fulfil = await client.post(f"/v1/requests/{dsr['id']}/fulfil", headers=officer_headers)
        assert fulfil.status_code == 200, fulfil.text
        await drain(worker)

        done = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
        assert done["status"] == "completed", done
        result = done["fulfilment"]["result"]
        assert result["transmission"]["status"] == "delivered"
        assert [item["format"] for item in result["exports"]] == ["json"]
        (audit,) = await audit_entries(app, "portability.transmitted")
        assert audit["status"] == "delivered" and audit["attempts"] == 1
        (sent,) = receiver.received
        assert sent.path.endswith("/import")
        assert sent.headers["x-dsr-request-id"] == dsr["id"]
        document = sent.json
    columns = {block["table"]: set(block["columns"]) for block in document["tables"]}
    # Provided by the subject: names and contact details; not ours: creation date.
    assert {"first_name", "email", "postcode"} <= columns["contacts"]
    assert "created_at" not in columns["contacts"]
    assert "supplementary_information" not in document
    csv = await client.get(
        f"/v1/requests/{dsr['id']}/export", params={"format": "csv"}, headers=officer_headers
    )
    assert csv.status_code == 404


async def test_csv_only_portability_completes_with_the_csv_pack_alone(
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
        type="portability",
        subject=JANE,
        details={"formats": ["csv"]},
    )

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)

    assert done["status"] == "completed", done["fulfilment"]
    assert [item["format"] for item in done["fulfilment"]["result"]["exports"]] == ["csv"]
    csv = await client.get(
        f"/v1/requests/{dsr['id']}/export", params={"format": "csv"}, headers=officer_headers
    )
    assert csv.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(csv.content))
    assert JANE_DOE["email"] in archive.read("contact.csv").decode()
    json_pack = await client.get(
        f"/v1/requests/{dsr['id']}/export", params={"format": "json"}, headers=officer_headers
    )
    assert json_pack.status_code == 404


async def test_progress_counts_every_source_done(
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    crm_url: str,
    worker: Worker,
) -> None:
    await register_crm(client, admin_headers, crm_url, name="demo_crm_copy")
    dsr = await verified_request(client, integration_headers, officer_headers, subject=JANE)

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)

    assert done["fulfilment"]["status"] == "succeeded"
    progress = done["fulfilment"]["progress"]
    assert progress["sources_done"] == 2 and progress["sources_total"] == 2, progress
