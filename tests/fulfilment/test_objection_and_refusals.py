"""Objections (absolute and balanced), and fulfil's refusals and failures."""

import os
from pathlib import Path

from fastapi import FastAPI
from httpx import AsyncClient

from app.demo import JANE_DOE
from app.worker import Worker
from tests.factories import create_request, verified_request
from tests.fulfilment.conftest import CrmSource, audit_entries, drain, fulfil_and_wait, register_crm

JANE = {"email": JANE_DOE["email"], "name": "Jane Doe"}


async def test_direct_marketing_objection_suppresses_named_channels_without_sources(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    worker: Worker,
) -> None:
    dsr = await verified_request(
        client,
        integration_headers,
        officer_headers,
        type="objection",
        subject=JANE,
        details={"scope": "direct_marketing", "channels": ["sms", "email"]},
    )
    decision = await client.post(
        f"/v1/requests/{dsr['id']}/fulfil",
        headers=officer_headers,
        json={"objection_decision": "override", "grounds": "no"},
    )
    assert decision.status_code == 422  # direct marketing objections are absolute
    assert decision.json()["detail"].startswith("objection_decision applies only to")

    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)
    assert done["status"] == "completed"
    assert done["fulfilment"]["result"]["suppressed_channels"] == ["email", "sms"]
    check = await client.post(
        "/v1/suppressions/check", headers=integration_headers, json={"email": JANE_DOE["email"]}
    )
    assert check.json() == {"suppressed": True, "channels": ["email", "sms"]}


async def test_legitimate_interests_objection_needs_a_decision_with_grounds(
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
        type="objection",
        subject=JANE,
        details={"scope": "legitimate_interests"},
    )
    url = f"/v1/requests/{dsr['id']}/fulfil"
    undecided = await client.post(url, headers=officer_headers)
    assert undecided.status_code == 422
    assert "needs an officer decision" in undecided.json()["detail"]
    no_grounds = await client.post(
        url, headers=officer_headers, json={"objection_decision": "override"}
    )
    assert no_grounds.status_code == 422
    assert no_grounds.json()["detail"].startswith("Overriding an objection needs")

    grounds = "Fraud checks are required by our card scheme rules."
    override = await client.post(
        url, headers=officer_headers, json={"objection_decision": "override", "grounds": grounds}
    )
    assert override.status_code == 200, override.text
    await drain(worker)

    done = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert done["status"] == "completed"
    assert done["fulfilment"]["result"]["decision"] == "override"
    assert grounds in done["completion_summary"]
    (data,) = await audit_entries(app, "objection.overridden")
    assert data["grounds"] == grounds
    # Overriding changes nothing in the sources.
    jane = next(row for row in await crm.rows("contacts") if row["customer_id"] == "C-1001")
    assert jane["processing_restricted"] == 0


async def test_upheld_profiling_objection_flags_the_sources(
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
        type="objection",
        subject=JANE,
        details={"scope": "profiling"},
    )
    done = await fulfil_and_wait(
        client, officer_headers, dsr["id"], worker, {"objection_decision": "uphold"}
    )
    assert done["status"] == "completed" and done["restricted"] is True
    jane = next(row for row in await crm.rows("contacts") if row["customer_id"] == "C-1001")
    assert jane["processing_restricted"] == 1


async def test_fulfil_refuses_without_sources_twice_or_before_verification(
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    demo_crm_file: Path,
) -> None:
    dsr = await verified_request(client, integration_headers, officer_headers, subject=JANE)
    url = f"/v1/requests/{dsr['id']}/fulfil"
    none = await client.post(url, headers=officer_headers)
    assert none.status_code == 409
    assert none.json()["title"] == "No data sources configured"

    waiting = await create_request(client, integration_headers, subject=JANE)
    await register_crm(client, admin_headers, f"sqlite:///{demo_crm_file}")
    early = await client.post(f"/v1/requests/{waiting['id']}/fulfil", headers=officer_headers)
    assert early.status_code == 409  # awaiting verification
    assert early.json()["type"].endswith("/invalid-transition")
    assert early.json()["current_status"] == "awaiting_verification"
    assert (await client.post(url, headers=integration_headers)).status_code == 403
    assert (await client.post(url, headers=officer_headers)).status_code == 200
    twice = await client.post(url, headers=officer_headers)
    assert twice.status_code == 409
    assert twice.json()["title"] == "Fulfilment under way"


async def test_a_failing_source_fails_the_run_without_personal_data_and_can_rerun(
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    demo_crm_file: Path,
    worker: Worker,
) -> None:
    await register_crm(client, admin_headers, f"sqlite:///{demo_crm_file}")
    dsr = await verified_request(
        client, integration_headers, officer_headers, type="erasure", subject=JANE
    )
    away = str(demo_crm_file) + ".away"
    os.replace(demo_crm_file, away)
    url = f"/v1/requests/{dsr['id']}/fulfil"
    assert (await client.post(url, headers=officer_headers)).status_code == 200
    await drain(worker)

    failed = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert failed["status"] == "in_progress"
    assert failed["fulfilment"]["status"] == "failed"
    assert failed["fulfilment"]["error"]
    assert JANE_DOE["email"] not in failed["fulfilment"]["error"]

    os.replace(away, demo_crm_file)
    done = await fulfil_and_wait(client, officer_headers, dsr["id"], worker)
    assert done["status"] == "completed"
    assert done["fulfilment"]["status"] == "succeeded"
