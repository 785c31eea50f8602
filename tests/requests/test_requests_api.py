"""POST/GET /v1/requests: intake, validation, idempotency, listing and visibility.

Every test runs on SQLite and PostgreSQL (the ``backend`` fixture in conftest).
"""

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app import deadlines
from app.core.config import Settings
from app.models import DsrRequest, OutboxEvent
from tests.conftest import get_token, new_client
from tests.deadline_helpers import (
    LONDON,
    add_months,
    assert_problem,
    next_working_day,
    parse_instant,
)
from tests.factories import count_rows, create_request, identity_assertion, request_body

# The response keys the DESIGN contract names, plus the extra keys the service documents in
# its OpenAPI schema (channel, details, rejection, completion_summary; verification.verified_at;
# deadline.paused_since). Compared exactly, so no internal column (submitted_by, ...) can leak.
DESIGN_KEYS = {
    "id",
    "type",
    "status",
    "regulation",
    "received_at",
    "external_ref",
    "subject",
    "verification",
    "deadline",
    "created_at",
    "updated_at",
}
EXTRA_KEYS = {
    "channel",
    "details",
    "rejection",
    "completion_summary",
    "fulfilment",
    "restricted",
    "assignee",
    "possible_duplicate_of",
    "subject_history",
    "approval",
}
DEADLINE_KEYS = {
    "clock_started_on",
    "due_date",
    "due_at",
    "extended",
    "paused_days",
    "days_left",
    "overdue",
}

VALID_DETAILS: dict[str, dict[str, Any]] = {
    "access": {"note": "everything since 2020"},
    "rectification": {
        "changes": [{"field": "address", "current": "1 Old Road", "requested": "2 New Street"}]
    },
    "erasure": {"grounds": "consent withdrawn"},
    "restriction": {"reason": "accuracy contested"},
    "portability": {"formats": ["json"], "transmit_to": None},
    "objection": {"scope": "direct_marketing", "channels": ["email", "sms"]},
}


# ---------------------------------------------------------------- helpers


def london_today() -> date:
    return datetime.now(UTC).astimezone(LONDON).date()


async def list_all(client: AsyncClient, headers: dict[str, str], **params: Any) -> list[dict]:
    response = await client.get("/v1/requests", headers=headers, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    return list(body["items"])


async def asserted_request(
    client: AsyncClient,
    headers: dict[str, str],
    credentials: tuple[str, str],
    **overrides: Any,
) -> dict[str, Any]:
    """A request vouched for by the integration (in_progress, clock from receipt)."""
    client_id, secret = credentials
    token = identity_assertion(client_id, secret, sub="jane.doe@example.com")
    return await create_request(client, headers, identity_assertion=token, **overrides)


# ---------------------------------------------------------------- create: shape and types


@pytest.mark.parametrize("request_type", sorted(VALID_DETAILS))
async def test_create_each_type_returns_201_with_the_contract_shape(
    client: AsyncClient, integration_headers: dict[str, str], request_type: str
) -> None:
    before = datetime.now(UTC)
    response = await client.post(
        "/v1/requests",
        headers=integration_headers,
        json=request_body(type=request_type, details=VALID_DETAILS[request_type]),
    )
    after = datetime.now(UTC)

    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/requests/{body['id']}"
    assert set(body) == DESIGN_KEYS | EXTRA_KEYS
    uuid.UUID(body["id"])
    assert body["type"] == request_type
    assert body["status"] == "awaiting_verification"
    assert body["regulation"] == "uk_gdpr"
    assert body["external_ref"] == "CRM-4411"
    assert body["subject"]["email"] == "jane.doe@example.com"
    assert body["subject"]["name"] == "Jane Doe"
    assert set(body["verification"]) == {"status", "method", "verified_at"}
    assert body["verification"]["status"] == "pending"
    assert body["verification"]["method"] is None
    assert set(body["deadline"]) == DEADLINE_KEYS | {"paused_since"}
    assert {key: body["deadline"][key] for key in DEADLINE_KEYS} == {
        "clock_started_on": None,
        "due_date": None,
        "due_at": None,
        "extended": False,
        "paused_days": 0,
        "days_left": None,
        "overdue": False,
    }
    for field in ("received_at", "created_at", "updated_at"):
        instant = parse_instant(body[field])
        assert before - timedelta(seconds=1) <= instant <= after + timedelta(seconds=1)
    assert body["rejection"] is None

    assert body["assignee"] is None
    assert body["possible_duplicate_of"] is None
    fetched = await client.get(response.headers["location"], headers=integration_headers)
    assert fetched.status_code == 200
    # The subject's history is for officers only: an integration sees null everywhere.
    assert body["subject_history"] is None
    assert fetched.json() == body


async def test_details_are_stored_as_sent(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_request(
        client, integration_headers, type="objection", details=VALID_DETAILS["objection"]
    )
    assert created["details"] == {"scope": "direct_marketing", "channels": ["email", "sms"]}


# ---------------------------------------------------------------- create: validation


@pytest.mark.parametrize(
    ("request_type", "details", "bad_field"),
    [
        pytest.param("rectification", None, "details", id="rectification-without-details"),
        pytest.param("rectification", {}, "changes", id="rectification-without-changes"),
        pytest.param("rectification", {"changes": []}, "changes", id="rectification-no-change"),
        pytest.param(
            "rectification",
            {"changes": [{"field": "address"}]},
            "requested",
            id="rectification-change-without-requested",
        ),
        pytest.param("objection", None, "details", id="objection-without-details"),
        pytest.param("objection", {"channels": ["email"]}, "scope", id="objection-without-scope"),
        pytest.param("objection", {"scope": "everything"}, "scope", id="objection-unknown-scope"),
        pytest.param(
            "objection",
            {"scope": "profiling", "channels": ["pigeon"]},
            "channels",
            id="objection-unknown-channel",
        ),
        pytest.param("portability", {"formats": ["xml"]}, "formats", id="portability-bad-format"),
        pytest.param("access", {"unexpected": 1}, "unexpected", id="access-unknown-key"),
        pytest.param(
            "erasure", {"grounds": "x", "hard_delete": True}, "hard_delete", id="erasure-extra"
        ),
        pytest.param(
            "access", {"scope": "direct_marketing"}, "scope", id="access-with-objection-details"
        ),
    ],
)
async def test_details_are_validated_per_type(
    client: AsyncClient,
    integration_headers: dict[str, str],
    request_type: str,
    details: dict[str, Any] | None,
    bad_field: str,
) -> None:
    body = request_body(type=request_type)
    if details is not None:
        body["details"] = details
    response = await client.post("/v1/requests", headers=integration_headers, json=body)
    problem = assert_problem(response, 422)
    assert problem["title"] == "Validation failed"
    assert any(bad_field in error["loc"] for error in problem["errors"]), problem["errors"]
    assert await list_all(client, integration_headers) == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"type": "deletion"}, ["type"], id="unknown-type"),
        pytest.param({"type": None}, ["type"], id="null-type"),
        pytest.param({"regulation": "gdpr"}, ["access", "regulation"], id="unknown-regulation"),
        pytest.param({"channel": "fax"}, ["access", "channel"], id="unknown-channel"),
        pytest.param({"priority": "high"}, ["access", "priority"], id="unknown-top-level-key"),
        pytest.param({"subject": {}}, ["access", "subject"], id="subject-without-identity"),
        pytest.param(
            {"subject": {"email": None, "name": None}}, ["access", "subject"], id="subject-all-null"
        ),
        pytest.param(
            {"subject": {"nickname": "JD"}},
            ["access", "subject", "nickname"],
            id="subject-unknown-key",
        ),
        pytest.param(
            {"subject": {"email": "not-an-email"}},
            ["access", "subject", "email"],
            id="invalid-email",
        ),
        pytest.param(
            {"subject": {"phone": "12"}}, ["access", "subject", "phone"], id="invalid-phone"
        ),
        pytest.param(
            {"received_at": "2026-09-03T10:00:00"},
            ["access", "received_at"],
            id="received-at-without-offset",
        ),
    ],
)
async def test_invalid_bodies_are_422(
    client: AsyncClient,
    integration_headers: dict[str, str],
    overrides: dict[str, Any],
    field: list[str],
) -> None:
    response = await client.post(
        "/v1/requests", headers=integration_headers, json=request_body(**overrides)
    )
    problem = assert_problem(response, 422)
    # Errors never echo personal data back.
    assert "not-an-email" not in response.text
    # The field at fault, and only it: a rule further down must not be what refused it.
    assert [error["loc"] for error in problem["errors"]] == [["body", *field]]


async def test_missing_type_is_422(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    body = request_body()
    del body["type"]
    response = await client.post("/v1/requests", headers=integration_headers, json=body)
    assert_problem(response, 422)


# ---------------------------------------------------------------- create: normalisation


async def test_email_domain_is_normalised(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_request(
        client, integration_headers, subject={"email": "Jane.Doe@EXAMPLE.com"}
    )
    assert created["subject"]["email"] == "Jane.Doe@example.com"


async def test_phone_is_normalised_to_e164(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    national = await create_request(client, integration_headers, subject={"phone": "020 7946 0000"})
    spaced = await create_request(
        client, integration_headers, subject={"phone": "+44 20 7946 0000"}
    )
    assert national["subject"]["phone"] == "+442079460000"
    assert spaced["subject"]["phone"] == "+442079460000"


@pytest.mark.parametrize("phone", ["01632 960001", "+44 1632 960001", "+441632960001"])
async def test_contract_example_phone_is_normalised_to_e164(
    client: AsyncClient, integration_headers: dict[str, str], phone: str
) -> None:
    response = await client.post(
        "/v1/requests", headers=integration_headers, json=request_body(subject={"phone": phone})
    )
    assert response.status_code == 201, response.text
    assert response.json()["subject"]["phone"] == "+441632960001"


# Numbers people actually give: Ofcom's drama ranges (some of which libphonenumber calls
# invalid), real UK landlines and mobiles, and other countries' numbers in E.164.
KEPT_PHONES = {
    "01632 960001": "+441632960001",
    "07700 900123": "+447700900123",
    "0115 496 0999": "+441154960999",
    "020 7946 0123": "+442079460123",
    "+44 7911 123456": "+447911123456",
    "+1 415 555 2671": "+14155552671",
    "+33 6 12 34 56 78": "+33612345678",
    "+49 30 123456": "+4930123456",
}


@pytest.mark.parametrize("phone", sorted(KEPT_PHONES))
async def test_drama_real_and_foreign_numbers_are_kept(
    client: AsyncClient, integration_headers: dict[str, str], phone: str
) -> None:
    created = await create_request(client, integration_headers, subject={"phone": phone})
    assert created["subject"]["phone"] == KEPT_PHONES[phone]


@pytest.mark.parametrize(
    "phone",
    [
        "12345",  # was stored as "+4412345": possible (locally), never a number anyone has
        "1234567",  # "+441234567": the right shape for nothing
        "+4412345",
        "01632 961000",  # next to the drama range, but unallocated
        "+1 555 0100",
        "+44 7700 900",
    ],
)
async def test_numbers_that_are_not_valid_are_422_without_echo(
    client: AsyncClient, integration_headers: dict[str, str], phone: str
) -> None:
    response = await client.post(
        "/v1/requests",
        headers=integration_headers,
        json=request_body(subject={"email": "jane.doe@example.com", "phone": phone}),
    )
    problem = assert_problem(response, 422)
    assert [error["loc"][-2:] for error in problem["errors"]] == [["subject", "phone"]]
    digits = "".join(ch for ch in phone if ch.isdigit())
    assert digits not in response.text.replace("422", "")


@pytest.mark.parametrize("channel", ["api", "web", "email"])
async def test_a_subject_with_only_a_name_is_422_naming_the_identity_fields(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str], channel: str
) -> None:
    response = await client.post(
        "/v1/requests",
        headers=integration_headers,
        json=request_body(subject={"name": "Zebedee Quillfeather"}, channel=channel),
    )
    problem = assert_problem(response, 422)
    assert sorted(tuple(error["loc"]) for error in problem["errors"]) == [
        ("body", "subject", "customer_id"),
        ("body", "subject", "email"),
        ("body", "subject", "phone"),
    ]
    assert "Zebedee" not in response.text and "Quillfeather" not in response.text
    assert await count_rows(app, DsrRequest) == 0


@pytest.mark.parametrize("channel", ["post", "phone"])
async def test_a_name_is_enough_by_post_or_phone_where_an_officer_verifies(
    client: AsyncClient, integration_headers: dict[str, str], channel: str
) -> None:
    created = await create_request(
        client, integration_headers, subject={"name": "Jane Doe"}, channel=channel
    )
    assert created["status"] == "awaiting_verification"
    assert created["subject"] == {
        "email": None,
        "phone": None,
        "name": "Jane Doe",
        "customer_id": None,
    }


# ---------------------------------------------------------------- create: regulation, receipt


async def test_regulation_defaults_to_uk_gdpr(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_request(client, integration_headers)
    assert created["regulation"] == "uk_gdpr"


@pytest.mark.parametrize("regulation", ["uk_gdpr", "eu_gdpr", "ccpa"])
async def test_regulation_is_kept(
    client: AsyncClient, integration_headers: dict[str, str], regulation: str
) -> None:
    created = await create_request(client, integration_headers, regulation=regulation)
    assert created["regulation"] == regulation
    fetched = await client.get(f"/v1/requests/{created['id']}", headers=integration_headers)
    assert fetched.json()["regulation"] == regulation


async def test_received_at_defaults_to_now(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    before = datetime.now(UTC)
    created = await create_request(client, integration_headers)
    received = parse_instant(created["received_at"])
    assert before - timedelta(seconds=1) <= received <= datetime.now(UTC) + timedelta(seconds=1)


async def test_received_at_may_be_back_dated(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = await create_request(
        client, integration_headers, channel="post", received_at="2026-09-03T10:00:00+01:00"
    )
    assert parse_instant(created["received_at"]) == datetime(2026, 9, 3, 9, 0, tzinfo=UTC)
    # Without identity the clock has not started, whatever the receipt date.
    assert created["deadline"]["due_date"] is None


async def test_received_at_in_the_future_is_422(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = await client.post(
        "/v1/requests", headers=integration_headers, json=request_body(received_at=future)
    )
    problem = assert_problem(response, 422)
    assert any("received_at" in error["loc"] for error in problem["errors"])
    assert await list_all(client, integration_headers) == []


# ---------------------------------------------------------------- idempotency


async def test_same_idempotency_key_and_body_replays_the_original_response(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    headers = {**integration_headers, "Idempotency-Key": "order-7781"}
    body = request_body(type="erasure", details={"grounds": "consent withdrawn"})
    first = await client.post("/v1/requests", headers=headers, json=body)
    # Same content, keys in another order: still the same body.
    second = await client.post("/v1/requests", headers=headers, json=dict(reversed(body.items())))

    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert await count_rows(app, DsrRequest) == 1
    assert await count_rows(app, OutboxEvent) == 1
    assert len(await list_all(client, integration_headers)) == 1


async def test_same_idempotency_key_with_another_body_is_409(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    headers = {**integration_headers, "Idempotency-Key": "order-7782"}
    first = await client.post("/v1/requests", headers=headers, json=request_body())
    assert first.status_code == 201
    other = await client.post(
        "/v1/requests", headers=headers, json=request_body(external_ref="CRM-9999")
    )
    assert_problem(other, 409)
    assert await count_rows(app, DsrRequest) == 1
    assert await count_rows(app, OutboxEvent) == 1


async def test_idempotency_keys_are_per_client(
    client: AsyncClient,
    admin_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    other_id, other_secret = await new_client(client, admin_headers, "integration")
    other_headers = {"Authorization": f"Bearer {await get_token(client, other_id, other_secret)}"}
    key = {"Idempotency-Key": "shared-key-1"}

    mine = await client.post(
        "/v1/requests", headers={**integration_headers, **key}, json=request_body()
    )
    # Another client, same key, different body: independent, not a conflict.
    theirs = await client.post(
        "/v1/requests",
        headers={**other_headers, **key},
        json=request_body(external_ref="OTHER-1"),
    )
    assert mine.status_code == 201, mine.text
    assert theirs.status_code == 201, theirs.text
    assert mine.json()["id"] != theirs.json()["id"]
    assert [r["id"] for r in await list_all(client, other_headers)] == [theirs.json()["id"]]


# ---------------------------------------------------------------- get and visibility


async def test_get_unknown_request_is_404(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    response = await client.get(f"/v1/requests/{uuid.uuid4()}", headers=officer_headers)
    assert_problem(response, 404)


async def test_integrations_see_only_their_own_requests(
    client: AsyncClient,
    admin_headers: dict[str, str],
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
) -> None:
    other_id, other_secret = await new_client(client, admin_headers, "integration")
    other_headers = {"Authorization": f"Bearer {await get_token(client, other_id, other_secret)}"}
    mine = await create_request(client, integration_headers, external_ref="MINE")
    theirs = await create_request(client, other_headers, external_ref="THEIRS")

    assert [r["id"] for r in await list_all(client, integration_headers)] == [mine["id"]]
    assert [r["id"] for r in await list_all(client, other_headers)] == [theirs["id"]]
    for path in (f"/v1/requests/{theirs['id']}", f"/v1/requests/{theirs['id']}/events"):
        assert_problem(await client.get(path, headers=integration_headers), 404)
    # Filters cannot widen what an integration sees.
    assert await list_all(client, integration_headers, subject_email="jane.doe@example.com") == [
        mine
    ]
    # Officers see every request.
    everything = await list_all(client, officer_headers)
    assert {r["id"] for r in everything} == {mine["id"], theirs["id"]}


# ---------------------------------------------------------------- listing


async def test_list_paginates_newest_first_without_gaps_or_duplicates(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    created = [
        await create_request(client, integration_headers, external_ref=f"REF-{n}") for n in range(7)
    ]
    seen: list[dict[str, Any]] = []
    page_sizes = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/requests", headers=integration_headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        seen.extend(page["items"])
        page_sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert page_sizes == [3, 3, 1]
    ids = [r["id"] for r in seen]
    assert len(ids) == len(set(ids)) == 7
    assert ids == [r["id"] for r in reversed(created)]
    created_at = [parse_instant(r["created_at"]) for r in seen]
    assert created_at == sorted(created_at, reverse=True)


async def test_list_with_an_invalid_cursor_is_400(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    response = await client.get(
        "/v1/requests", headers=integration_headers, params={"cursor": "not-a-cursor"}
    )
    assert_problem(response, 400)


async def test_list_filters_by_status_and_type(
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
) -> None:
    waiting = await create_request(client, integration_headers)
    running = await asserted_request(
        client,
        integration_headers,
        integration_credentials,
        type="erasure",
        details={"grounds": "consent withdrawn"},
    )
    cancelled = await create_request(
        client, integration_headers, type="objection", details={"scope": "profiling"}
    )
    response = await client.post(
        f"/v1/requests/{cancelled['id']}/cancel", headers=integration_headers
    )
    assert response.status_code == 200, response.text

    def ids(items: list[dict[str, Any]]) -> list[str]:
        return [r["id"] for r in items]

    assert ids(await list_all(client, integration_headers, status="awaiting_verification")) == [
        waiting["id"]
    ]
    assert ids(await list_all(client, integration_headers, status="in_progress")) == [running["id"]]
    assert ids(await list_all(client, integration_headers, status="cancelled")) == [cancelled["id"]]
    assert await list_all(client, integration_headers, status="paused") == []
    assert ids(await list_all(client, integration_headers, type="erasure")) == [running["id"]]
    assert ids(await list_all(client, integration_headers, type="objection")) == [cancelled["id"]]
    assert ids(
        await list_all(client, integration_headers, type="access", status="awaiting_verification")
    ) == [waiting["id"]]
    bad = await client.get("/v1/requests", headers=integration_headers, params={"status": "lost"})
    assert_problem(bad, 422)


async def test_list_filters_overdue_and_due_before(
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
) -> None:
    two_months_ago = datetime.now(UTC) - timedelta(days=61)
    late = await asserted_request(
        client,
        integration_headers,
        integration_credentials,
        received_at=two_months_ago.isoformat(),
        external_ref="LATE",
    )
    current = await asserted_request(
        client, integration_headers, integration_credentials, external_ref="CURRENT"
    )
    unverified = await create_request(
        client,
        integration_headers,
        received_at=two_months_ago.isoformat(),
        external_ref="UNVERIFIED",
    )

    # The late request's clock started on its (London) receipt date.
    started = two_months_ago.astimezone(LONDON).date()
    expected_due = next_working_day(add_months(started, 1))
    assert late["deadline"]["clock_started_on"] == started.isoformat()
    assert late["deadline"]["due_date"] == expected_due.isoformat()
    assert late["deadline"]["overdue"] is True
    assert late["deadline"]["days_left"] == (expected_due - london_today()).days
    assert late["deadline"]["days_left"] < 0
    assert current["deadline"]["overdue"] is False

    overdue = await list_all(client, integration_headers, overdue="true")
    assert [r["id"] for r in overdue] == [late["id"]]
    assert overdue[0]["deadline"]["overdue"] is True

    due_before_today = await list_all(
        client, integration_headers, due_before=london_today().isoformat()
    )
    assert [r["id"] for r in due_before_today] == [late["id"]]
    # Strictly before: the due date itself is excluded, the day after includes it.
    assert await list_all(client, integration_headers, due_before=expected_due.isoformat()) == []
    far = (date.fromisoformat(current["deadline"]["due_date"]) + timedelta(days=1)).isoformat()
    assert {r["id"] for r in await list_all(client, integration_headers, due_before=far)} == {
        late["id"],
        current["id"],
    }
    assert unverified["id"] not in {
        r["id"] for r in await list_all(client, integration_headers, due_before=far)
    }
    bad = await client.get(
        "/v1/requests", headers=integration_headers, params={"due_before": "21/11/2026"}
    )
    assert_problem(bad, 422)


async def _set_due(app: FastAPI, request_id: str, due_date: date) -> None:
    """Give a running request this due date (its due_at is the end of that day in London)."""
    async with app.state.sessionmaker.begin() as session:
        dsr = await session.get(DsrRequest, uuid.UUID(request_id))
        dsr.due_date = due_date
        dsr.due_at = deadlines.due_at(due_date, LONDON)


async def test_list_and_search_filter_due_soon_within_the_configured_days(
    app: FastAPI,
    client: AsyncClient,
    settings: Settings,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
) -> None:
    running = {
        ref: await asserted_request(
            client, integration_headers, integration_credentials, external_ref=ref
        )
        for ref in ("TODAY", "HORIZON", "BEYOND", "LATE")
    }
    unverified = await create_request(client, integration_headers, external_ref="UNVERIFIED")
    today = london_today()
    await _set_due(app, running["TODAY"]["id"], today)
    await _set_due(app, running["HORIZON"]["id"], today + timedelta(days=settings.due_soon_days))
    await _set_due(app, running["BEYOND"]["id"], today + timedelta(days=settings.due_soon_days + 1))
    await _set_due(app, running["LATE"]["id"], today - timedelta(days=1))  # overdue, not "soon"

    soon = await list_all(client, integration_headers, due_soon="true")
    assert [r["external_ref"] for r in soon] == ["HORIZON", "TODAY"]
    not_soon = await list_all(client, integration_headers, due_soon="false")
    assert {r["external_ref"] for r in not_soon} == {"BEYOND", "LATE", "UNVERIFIED"}
    assert unverified["id"] in {r["id"] for r in not_soon}
    # The same filter in a search body, alone and with another filter.
    page = await search_page(client, integration_headers, due_soon=True)
    assert page["items"] == soon
    page = await search_page(client, integration_headers, due_soon=False, overdue=True)
    assert [r["external_ref"] for r in page["items"]] == ["LATE"]
    bad = await client.get("/v1/requests", headers=integration_headers, params={"due_soon": "soon"})
    assert_problem(bad, 422)


async def test_overdue_request_stops_being_overdue_once_closed(
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
    officer_headers: dict[str, str],
) -> None:
    late = await asserted_request(
        client,
        integration_headers,
        integration_credentials,
        received_at=(datetime.now(UTC) - timedelta(days=61)).isoformat(),
    )
    response = await client.post(
        f"/v1/requests/{late['id']}/complete", headers=officer_headers, json={}
    )
    assert response.status_code == 200, response.text
    assert response.json()["deadline"]["overdue"] is False
    assert await list_all(client, integration_headers, overdue="true") == []


async def test_list_filters_by_normalised_subject_email(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    jane = await create_request(
        client, integration_headers, subject={"email": "jane.doe@EXAMPLE.com"}
    )
    await create_request(client, integration_headers, subject={"email": "john@example.com"})
    await create_request(client, integration_headers, subject={"phone": "020 7946 0000"})

    for query in ("jane.doe@example.com", "jane.doe@EXAMPLE.COM", " jane.doe@Example.com "):
        found = await list_all(client, integration_headers, subject_email=query.strip())
        assert [r["id"] for r in found] == [jane["id"]], query
    assert await list_all(client, integration_headers, subject_email="nobody@example.com") == []
    # A malformed address matches nothing rather than erroring.
    assert await list_all(client, integration_headers, subject_email="not-an-email") == []


async def test_concurrent_retries_with_one_idempotency_key_create_one_request(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    headers = {**integration_headers, "Idempotency-Key": "burst-1"}
    body = request_body(external_ref="BURST")
    responses = await asyncio.gather(
        *(client.post("/v1/requests", headers=headers, json=body) for _ in range(5))
    )
    codes = [response.status_code for response in responses]
    assert set(codes) <= {201, 409}, codes
    created = [response.json() for response in responses if response.status_code == 201]
    assert created
    assert all(item == created[0] for item in created)
    for response in responses:
        if response.status_code == 409:
            assert assert_problem(response, 409)["title"] == "Idempotency key in use"
    assert await count_rows(app, DsrRequest) == 1
    assert await count_rows(app, OutboxEvent) == 1
    # Once settled, a retry always gets the original response.
    retry = await client.post("/v1/requests", headers=headers, json=body)
    assert retry.status_code == 201
    assert retry.json() == created[0]


@pytest.mark.parametrize(
    "cursor",
    [
        "e5",
        "WyJ4Il0",  # ["x"]
        "eyJhIjoxfQ",  # {"a":1}
        "WzEsMl0",  # [1,2]
        "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIl0",
        "!!!",
    ],
)
async def test_malformed_cursors_are_400_not_500(
    client: AsyncClient, integration_headers: dict[str, str], cursor: str
) -> None:
    response = await client.get(
        "/v1/requests", headers=integration_headers, params={"cursor": cursor}
    )
    assert_problem(response, 400)


# ---------------------------------------------------------------- search with a body


async def search_page(client: AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/requests/search", headers=headers, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_search_finds_by_subject_email_like_the_list_and_keeps_integrations_apart(
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    jane = await create_request(
        client, integration_headers, subject={"email": "jane.doe@EXAMPLE.com"}
    )
    await create_request(client, integration_headers, subject={"email": "john@example.com"})
    other_id, other_secret = await new_client(client, admin_headers, "integration")
    other = {"Authorization": f"Bearer {await get_token(client, other_id, other_secret)}"}
    theirs = await create_request(client, other, subject={"email": "jane.doe@example.com"})

    page = await search_page(client, integration_headers, subject_email=" Jane.Doe@example.com ")
    assert [r["id"] for r in page["items"]] == [jane["id"]]
    assert page["items"] == await list_all(
        client, integration_headers, subject_email="jane.doe@example.com"
    )
    assert page["next_cursor"] is None
    # Officers see every integration's requests; a malformed address finds nothing.
    page = await search_page(client, officer_headers, subject_email="jane.doe@example.com")
    assert [r["id"] for r in page["items"]] == [theirs["id"], jane["id"]]
    assert (await search_page(client, officer_headers, subject_email="not-an-email"))["items"] == []


async def test_search_filters_and_pages_like_the_list(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    erasures = [
        await create_request(
            client,
            integration_headers,
            type="erasure",
            details={"grounds": "consent withdrawn"},
            external_ref=f"E-{n}",
        )
        for n in range(3)
    ]
    await create_request(client, integration_headers)
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page = await search_page(
            client, integration_headers, type="erasure", limit=2, cursor=cursor
        )
        seen.extend(r["id"] for r in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["id"] for r in reversed(erasures)]
    page = await search_page(client, integration_headers, status="in_progress")
    assert page["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 0},
        {"limit": 201},
        {"status": "lost"},
        {"due_before": "31/12/2026"},
        {"subject_email": "x" * 321},
        {"email": "jane.doe@example.com"},  # unknown field: a typo must not list everything
        ["subject_email"],
    ],
)
async def test_search_with_a_malformed_body_is_422_without_the_address(
    client: AsyncClient, integration_headers: dict[str, str], body: Any
) -> None:
    response = await client.post("/v1/requests/search", headers=integration_headers, json=body)
    problem = assert_problem(response, 422)
    assert "jane.doe" not in response.text
    assert problem["status"] == 422


async def test_search_with_an_invalid_cursor_is_400(
    client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/requests/search", headers=integration_headers, json={"cursor": "!!!"}
    )
    assert_problem(response, 400)
