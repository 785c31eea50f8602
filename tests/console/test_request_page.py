"""The request page: its sections, the actions its status allows, and every form end to end,
audited as the signed-in person."""

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from httpx import AsyncClient

from tests.console.helpers import login, make_person
from tests.factories import create_request, verified_request

OFFICER = "olivia.officer@example.com"
SECTIONS = [
    "summary",
    "deadline",
    "timeline",
    "verification",
    "owner",
    "notes",
    "messages",
    "plan",
    "fulfilment",
    "exports",
    "actions",
]
ACTION_BUTTONS = {
    "pause": ">Pause</button>",
    "resume": ">Resume</button>",
    "extend": ">Extend</button>",
    "reject": ">Reject</button>",
    "cancel": ">Cancel</button>",
    "complete": ">Complete</button>",
    "fulfil": ">Fulfil</button>",
}


def page_url(request_id: str) -> str:
    return f"/console/requests/{request_id}"


def clock_state(html: str) -> str:
    found = re.search(r'id="clock-state">([^<]+)<', html)
    assert found, "no clock state"
    return found.group(1)


def offered(html: str) -> set[str]:
    actions = html[html.index('<h2 id="actions">') :]
    return {name for name, button in ACTION_BUTTONS.items() if button in actions}


async def events(client: AsyncClient, headers: dict[str, str], request_id: str) -> list[Any]:
    response = await client.get(f"/v1/requests/{request_id}/events", headers=headers)
    return list(response.json()["items"])


async def test_the_page_shows_each_section_in_order(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    await make_person(app)
    created = await create_request(
        client,
        officer_headers,
        type="rectification",
        subject={"email": "jane.doe@example.com", "phone": "+441632960001", "name": "Jane Doe"},
        details={"changes": [{"field": "surname", "current": "Doe", "requested": "Smith"}]},
    )
    await login(client, OFFICER)
    page = await client.get(page_url(created["id"]))
    assert page.status_code == 200, page.text
    html = page.text
    positions = [html.index(f'<h2 id="{section}">') for section in SECTIONS]
    assert positions == sorted(positions)
    assert "<h1>" in html and html.index("<h1>") < positions[0]
    # Summary: identities, details, regulation, channel.
    for text in ("jane.doe@example.com", "+441632960001", "Jane Doe", "surname", "Smith"):
        assert text in html
    assert clock_state(html) == "Clock not started"
    assert '<span class="light light-no-clock">No clock</span>' in html
    # Timeline names the API client that logged it.
    assert "request.received" in html
    # Verification forms, labelled.
    for label in ("Document type", "Business address confirmed", "Result"):
        assert f">{label}</label>" in html
    assert ">Send an email code</button>" in html and ">Record document check</button>" in html
    # Awaiting verification: reject and cancel only.
    assert offered(html) == {"reject", "cancel"}
    assert ">Show the plan</a>" in html
    assert "<script" not in html and "style=" not in html
    assert '<meta http-equiv="refresh"' not in html
    # Every input and textarea and select has its label.
    for field in re.findall(r"<(?:input|select|textarea) [^>]*>", html):
        if 'type="hidden"' in field:
            continue
        field_id = re.search(r'id="([^"]+)"', field)
        assert field_id and f'for="{field_id.group(1)}"' in html, field
    missing = await client.get(page_url("00000000-0000-4000-8000-000000000000"))
    assert missing.status_code == 404


async def test_only_the_actions_the_status_allows_are_offered(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    await make_person(app)
    running = await verified_request(client, officer_headers, officer_headers)
    token = await login(client, OFFICER)
    html = (await client.get(page_url(running["id"]))).text
    assert offered(html) == {"pause", "extend", "reject", "cancel", "complete", "fulfil"}
    assert "Send an email code" not in html

    paused = await client.post(
        f"{page_url(running['id'])}/actions/pause",
        data={"csrf_token": token, "reason": "awaiting_fee"},
    )
    assert paused.status_code == 303
    html = (await client.get(page_url(running["id"]))).text
    assert offered(html) == {"resume", "extend", "reject", "cancel"}
    assert clock_state(html) == "Waiting for the fee"

    # Asked anyway, an action the status does not allow is refused on the page, not a 500.
    refused = await client.post(
        f"{page_url(running['id'])}/actions/complete", data={"csrf_token": token}
    )
    assert refused.status_code == 409
    assert 'role="alert"' in refused.text and "Cannot complete" in refused.text
    assert (await client.get(f"/v1/requests/{running['id']}", headers=officer_headers)).json()[
        "status"
    ] == "paused"

    cancelled = await client.post(
        f"{page_url(running['id'])}/actions/cancel", data={"csrf_token": token}
    )
    assert cancelled.status_code == 303
    html = (await client.get(page_url(running["id"]))).text
    assert offered(html) == set() and "No action is possible" in html


async def test_each_action_works_and_is_audited_as_the_person(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    user_id = await make_person(app)
    dsr = await verified_request(client, officer_headers, officer_headers)
    refused = await verified_request(
        client, officer_headers, officer_headers, subject={"email": "x@example.com"}
    )
    token = await login(client, OFFICER)
    base = page_url(dsr["id"])
    steps: list[tuple[str, dict[str, str], str]] = [
        ("assign", {"assignee": "me"}, "request.assigned"),
        ("notes", {"text": "Called the subject."}, "request.note_added"),
        ("actions/pause", {"reason": "awaiting_clarification"}, "request.paused"),
        ("actions/resume", {}, "request.resumed"),
        ("actions/extend", {"reason": "Many systems to search."}, "request.extended"),
        ("actions/complete", {"summary": "Answered by post."}, "request.completed"),
    ]
    for path, fields, event_type in steps:
        response = await client.post(f"{base}/{path}", data={"csrf_token": token, **fields})
        assert response.status_code == 303, (path, response.text)
        assert response.headers["location"].startswith(f"{base}?done=")
        shown = await client.get(response.headers["location"])
        assert 'class="notice" role="status"' in shown.text, path
        trail = await events(client, officer_headers, dsr["id"])
        assert trail[-1]["type"] == event_type and trail[-1]["actor"] == user_id, path
    html = (await client.get(base)).text
    assert "Called the subject." in html and "Olivia Officer" in html
    assert "Many systems to search." in html
    fetched = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert fetched["status"] == "completed" and fetched["deadline"]["extended"] is True
    assert fetched["assignee"] == user_id

    rejected = await client.post(
        f"{page_url(refused['id'])}/actions/reject",
        data={"csrf_token": token, "reason": "excessive", "explanation": "Third this month."},
    )
    assert rejected.status_code == 303
    trail = await events(client, officer_headers, refused["id"])
    assert (trail[-1]["type"], trail[-1]["actor"]) == ("request.rejected", user_id)


async def test_invalid_forms_and_refusals_are_shown_on_the_page(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    await make_person(app)
    dsr = await verified_request(client, officer_headers, officer_headers)
    token = await login(client, OFFICER)
    base = page_url(dsr["id"])
    secret = "jane-secret-passport-123"
    bad_reason = await client.post(
        f"{base}/actions/pause", data={"csrf_token": token, "reason": secret}
    )
    assert bad_reason.status_code == 422 and "reason" in bad_reason.text
    assert secret not in bad_reason.text
    empty = await client.post(f"{base}/actions/extend", data={"csrf_token": token, "reason": ""})
    assert empty.status_code == 422
    unknown = await client.post(f"{base}/actions/explode", data={"csrf_token": token})
    assert unknown.status_code == 404
    nobody = await client.post(f"{base}/assign", data={"csrf_token": token, "assignee": "usr_x"})
    assert nobody.status_code == 422
    late_reply = await client.post(
        f"{base}/messages/reply",
        data={"csrf_token": token, "text": "hello", "received_at": "2999-01-01T10:00"},
    )
    assert late_reply.status_code in (409, 422)
    assert (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()[
        "status"
    ] == "in_progress"


async def test_every_form_needs_the_csrf_token(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    await make_person(app)
    dsr = await create_request(client, officer_headers)
    await login(client, OFFICER)
    base = page_url(dsr["id"])
    for path in (
        "verification/email-code",
        "verification/document",
        "assign",
        "notes",
        "messages",
        "messages/reply",
        "approve",
        *(f"actions/{name}" for name in ACTION_BUTTONS),
    ):
        response = await client.post(f"{base}/{path}", data={"reason": "excessive"})
        assert response.status_code == 403, path
    trail = await events(client, officer_headers, dsr["id"])
    assert [event["type"] for event in trail] == ["request.received"]


async def test_a_document_check_from_the_page_starts_the_clock(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    user_id = await make_person(app)
    dsr = await create_request(client, officer_headers)
    other = await create_request(client, officer_headers, subject={"email": "x@example.com"})
    token = await login(client, OFFICER)
    checked = await client.post(
        f"{page_url(dsr['id'])}/verification/document",
        data={
            "csrf_token": token,
            "document_type": "driving_licence",
            "business_address_confirmed": "yes",
            "result": "passed",
        },
    )
    assert checked.status_code == 303, checked.text
    html = (await client.get(page_url(dsr["id"]))).text
    assert clock_state(html) == "Clock running"
    fetched = (await client.get(f"/v1/requests/{dsr['id']}", headers=officer_headers)).json()
    assert fetched["status"] == "in_progress" and fetched["deadline"]["due_date"]
    verified = (await events(client, officer_headers, dsr["id"]))[-1]
    assert verified["type"] == "request.verified" and verified["actor"] == user_id
    assert verified["data"]["business_address_confirmed"] is True

    code = await client.post(
        f"{page_url(other['id'])}/verification/email-code", data={"csrf_token": token}
    )
    assert code.status_code == 303
    sent = (await events(client, officer_headers, other["id"]))[-1]
    assert (sent["type"], sent["actor"]) == ("request.verification_requested", user_id)
    # Sent again at once: the cooldown refuses it, shown on the page (429), never a 500.
    again = await client.post(
        f"{page_url(other['id'])}/verification/email-code", data={"csrf_token": token}
    )
    assert again.status_code == 429 and 'role="alert"' in again.text


async def test_a_clarification_stops_the_clock_and_the_answer_restarts_it(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    user_id = await make_person(app)
    dsr = await verified_request(client, officer_headers, officer_headers)
    token = await login(client, OFFICER)
    base = page_url(dsr["id"])
    sent = await client.post(
        f"{base}/messages",
        data={
            "csrf_token": token,
            "kind": "clarification",
            "channel": "email",
            "text": "Which account do you mean?",
        },
    )
    assert sent.status_code == 303, sent.text
    html = (await client.get(base)).text
    assert clock_state(html) == "Clock stopped"
    assert "Which account do you mean?" in html and "Delivery: <strong>queued</strong>" in html
    assert offered(html) == {"resume", "extend", "reject", "cancel"}
    now_local = datetime.now(ZoneInfo("Europe/London")).strftime("%Y-%m-%dT%H:%M")
    answered = await client.post(
        f"{base}/messages/reply",
        data={"csrf_token": token, "text": "My work account.", "received_at": now_local},
    )
    assert answered.status_code == 303, answered.text
    html = (await client.get(base)).text
    assert clock_state(html) == "Clock running"
    assert "My work account." in html
    trail = await events(client, officer_headers, dsr["id"])
    resumed = [event for event in trail if event["type"] == "request.resumed"]
    assert [event["actor"] for event in resumed] == [user_id]
    paused = [event for event in trail if event["type"] == "request.paused"]
    assert [event["actor"] for event in paused] == [user_id]
