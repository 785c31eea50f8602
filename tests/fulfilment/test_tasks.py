"""The task flow: a task source's consumer gets task.created on loopback and reports back."""

import json

from fastapi import FastAPI
from httpx import AsyncClient

from app.demo import JANE_DOE
from app.worker import Worker
from tests.conftest import get_token, new_client
from tests.factories import verified_request
from tests.fulfilment.conftest import CrmSource, drain
from tests.webhook_receiver import Receiver

JANE = {"email": JANE_DOE["email"], "name": "Jane Doe"}


async def _assignee(
    client: AsyncClient, admin_headers: dict[str, str], receiver: Receiver
) -> tuple[str, dict[str, str], str]:
    client_id, secret = await new_client(client, admin_headers, "integration", "helpdesk")
    headers = {"Authorization": f"Bearer {await get_token(client, client_id, secret)}"}
    hook = await client.post(
        "/v1/webhooks", headers=headers, json={"url": receiver.url, "events": ["task.*"]}
    )
    assert hook.status_code == 201, hook.text
    source = await client.post(
        "/v1/data-sources",
        headers=admin_headers,
        json={
            "name": "helpdesk",
            "kind": "task",
            "assignee_client_id": client_id,
            "instructions": "Close the person's helpdesk account and tickets.",
        },
    )
    assert source.status_code == 201, source.text
    return client_id, headers, hook.json()["secret"]


async def test_erasure_waits_for_the_task_and_completes_when_reported(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    async with Receiver() as receiver:
        _, helpdesk, secret = await _assignee(client, admin_headers, receiver)
        dsr = await verified_request(
            client, integration_headers, officer_headers, type="erasure", subject=JANE
        )
        fulfil = await client.post(f"/v1/requests/{dsr['id']}/fulfil", headers=officer_headers)
        assert fulfil.status_code == 200
        await drain(worker)
        await worker.run_once(sweep=False)  # deliver the task.created event

        waiting = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
        assert waiting["status"] == "in_progress"
        assert waiting["fulfilment"]["status"] == "waiting_for_tasks"
        (delivery,) = receiver.received
        assert delivery.verifies_with(secret)
        event = delivery.json
        assert event["type"] == "task.created"
        assert JANE_DOE["email"] not in json.dumps(event)
        task_id = event["data"]["task"]["id"]

    task_url = f"/v1/requests/{dsr['id']}/tasks/{task_id}"
    # Only the assignee and officers may read the task: it names the subject.
    assert (await client.get(task_url, headers=integration_headers)).status_code == 404
    task = await client.get(task_url, headers=helpdesk)
    assert task.status_code == 200
    assert task.json()["subject"]["email"] == JANE_DOE["email"]
    assert task.json()["request_type"] == "erasure"
    assert task.json()["instructions"].startswith("Close")

    records = await client.post(
        task_url,
        headers=helpdesk,
        json={"status": "done", "records": [{"table": "t", "category": "c", "data": {}}]},
    )
    assert records.status_code == 422  # records belong to access and portability
    assert records.json()["detail"] == "`records` apply to access and portability tasks only."
    report = await client.post(
        task_url,
        headers=helpdesk,
        json={
            "status": "done",
            "note": "account closed",
            "retained": [{"category": "financial", "reason": "invoices, 6 years"}],
        },
    )
    assert report.status_code == 200, report.text
    assert report.json()["status"] == "done"
    again = await client.post(task_url, headers=helpdesk, json={"status": "done"})
    assert again.status_code == 409
    assert again.json()["title"] == "Task closed"

    await drain(worker)
    done = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert done["status"] == "completed"
    result = done["fulfilment"]["result"]
    assert {item["source"] for item in result["retained"]} == {"demo_crm", "helpdesk"}
    assert [task["status"] for task in result["tasks"]] == ["done"]


async def test_access_includes_the_records_a_task_reports(
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    crm: CrmSource,
    worker: Worker,
) -> None:
    async with Receiver() as receiver:
        _, helpdesk, _ = await _assignee(client, admin_headers, receiver)
        dsr = await verified_request(client, integration_headers, officer_headers, subject=JANE)
        await client.post(f"/v1/requests/{dsr['id']}/fulfil", headers=officer_headers)
        await drain(worker)
        listed = await client.get(f"/v1/requests/{dsr['id']}/tasks", headers=helpdesk)
        (task,) = listed.json()["items"]

    report = await client.post(
        f"/v1/requests/{dsr['id']}/tasks/{task['id']}",
        headers=helpdesk,
        json={
            "status": "done",
            "records": [
                {
                    "table": "tickets",
                    "category": "communications",
                    "record_id": "T-2211",
                    "data": {"subject": '=HYPERLINK("x")', "opened_at": "2026-08-01"},
                }
            ],
        },
    )
    assert report.status_code == 200, report.text
    await drain(worker)

    done = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert done["status"] == "completed", done["fulfilment"]
    document = (
        await client.get(
            f"/v1/requests/{dsr['id']}/export", params={"format": "json"}, headers=officer_headers
        )
    ).json()
    tickets = [block for block in document["tables"] if block["table"] == "tickets"]
    assert tickets and tickets[0]["source"] == "helpdesk"
    assert tickets[0]["rows"][0]["subject"] == '=HYPERLINK("x")'


async def test_a_failed_task_fails_the_fulfilment(
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    worker: Worker,
) -> None:
    async with Receiver() as receiver:
        _, helpdesk, _ = await _assignee(client, admin_headers, receiver)
        dsr = await verified_request(
            client, integration_headers, officer_headers, type="restriction", subject=JANE
        )
        await client.post(f"/v1/requests/{dsr['id']}/fulfil", headers=officer_headers)
        await drain(worker)
        (task,) = (await client.get(f"/v1/requests/{dsr['id']}/tasks", headers=helpdesk)).json()[
            "items"
        ]
    failed = await client.post(
        f"/v1/requests/{dsr['id']}/tasks/{task['id']}",
        headers=helpdesk,
        json={"status": "failed", "note": "system offline"},
    )
    assert failed.status_code == 200
    state = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert state["status"] == "in_progress"
    assert state["fulfilment"]["status"] == "failed"
