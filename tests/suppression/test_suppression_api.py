"""The suppression list: check, add, merge, list, filter, remove; never a plaintext identity."""

import logging
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from app.core.config import Settings
from app.core.errors import UnprocessableEntity
from app.core.time import utcnow
from app.models import metadata
from app.suppression import service as suppression
from tests.factories import create_request

PROBLEM_JSON = "application/problem+json"
EMAIL = "Jane.Doe@Example.COM"
PHONE = "01632 960001"
# Every spelling of the identities above that would betray them if stored or logged.
PLAINTEXT = (
    "jane.doe@example.com",
    "jane.doe",
    "+441632960001",
    "441632960001",
    "1632960001",
    "01632 960001",
)


async def _add(client: AsyncClient, headers: dict[str, str], **body: Any) -> list[dict[str, Any]]:
    response = await client.post("/v1/suppressions", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return list(response.json()["items"])


async def _check(client: AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/suppressions/check", headers=headers, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _assert_422_without_echo(response: Any, *secrets: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    for secret in secrets:
        assert secret.lower() not in response.text.lower()


async def test_added_email_is_suppressed_on_its_channels(
    client: AsyncClient, officer_headers: dict[str, str], integration_headers: dict[str, str]
) -> None:
    [entry] = await _add(client, officer_headers, email=EMAIL, channels=["sms", "email"])
    assert entry["identity_kind"] == "email"
    assert entry["channels"] == ["email", "sms"]
    assert entry["reason"] == "manual"
    assert entry["request_id"] is None
    assert "email" not in entry and "identity_hash" not in entry

    answer = await _check(client, integration_headers, email=EMAIL)
    assert answer == {"suppressed": True, "channels": ["email", "sms"]}


async def test_unknown_identity_is_not_suppressed(
    client: AsyncClient, officer_headers: dict[str, str], integration_headers: dict[str, str]
) -> None:
    await _add(client, officer_headers, email=EMAIL, phone=PHONE)
    for body in (
        {"email": "someone.else@example.com"},
        {"phone": "+441632960999"},
        {"email": "jane.doe@example.org", "phone": "07700 900123"},
    ):
        assert await _check(client, integration_headers, **body) == {
            "suppressed": False,
            "channels": [],
        }


@pytest.mark.parametrize(
    ("added", "checked"),
    [
        ({"email": "Jane.Doe@Example.COM"}, {"email": "jane.doe@example.com"}),
        ({"email": "jane.doe@example.com"}, {"email": "  JANE.DOE@EXAMPLE.COM "}),
        ({"phone": "01632 960001"}, {"phone": "+441632960001"}),
        ({"phone": "+44 (0)1632 960001"}, {"phone": "01632960001"}),
        ({"phone": "+441632960001"}, {"phone": "+44 1632 960001"}),
    ],
)
async def test_case_and_format_variants_match(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    added: dict[str, str],
    checked: dict[str, str],
) -> None:
    await _add(client, officer_headers, **added, channels=["post"])
    assert await _check(client, integration_headers, **checked) == {
        "suppressed": True,
        "channels": ["post"],
    }


async def test_repeat_suppression_merges_channels_into_one_entry(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    [first] = await _add(client, officer_headers, email=EMAIL, channels=["email"])
    [second] = await _add(client, officer_headers, email="jane.doe@example.com", channels=["post"])
    assert second["id"] == first["id"]
    assert second["channels"] == ["email", "post"]
    assert second["created_at"] == first["created_at"]

    listed = await client.get("/v1/suppressions", headers=officer_headers)
    assert [item["id"] for item in listed.json()["items"]] == [first["id"]]
    answer = await _check(client, officer_headers, email=EMAIL)
    assert answer == {"suppressed": True, "channels": ["email", "post"]}


async def test_check_answers_the_union_over_identities(
    client: AsyncClient, officer_headers: dict[str, str], integration_headers: dict[str, str]
) -> None:
    await _add(client, officer_headers, email=EMAIL, channels=["email"])
    await _add(client, officer_headers, phone=PHONE, channels=["sms", "phone"])
    answer = await _check(client, integration_headers, email=EMAIL, phone="+441632960001")
    assert answer == {"suppressed": True, "channels": ["email", "phone", "sms"]}
    # One suppressed identity is enough, whatever the other is.
    answer = await _check(client, integration_headers, email="new@example.com", phone=PHONE)
    assert answer == {"suppressed": True, "channels": ["phone", "sms"]}


async def test_no_plaintext_identity_in_any_row_or_log(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    [email_entry, phone_entry] = await _add(client, officer_headers, email=EMAIL, phone=PHONE)
    await _add(client, officer_headers, email=EMAIL.lower(), channels=["post"])
    await _check(client, integration_headers, email=EMAIL, phone=PHONE)
    response = await client.get(
        "/v1/suppressions", headers=officer_headers, params={"email": EMAIL}
    )
    assert [item["id"] for item in response.json()["items"]] == [email_entry["id"]]
    deleted = await client.delete(f"/v1/suppressions/{phone_entry['id']}", headers=officer_headers)
    assert deleted.status_code == 204

    cells = 0
    async with app.state.sessionmaker() as session:
        for table in metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                for value in row:
                    cells += 1
                    for plaintext in PLAINTEXT:
                        assert plaintext not in str(value).lower(), (table.name, plaintext)
    assert cells > 0
    # The service's own logs (the test client's httpx log shows the URL it sent).
    for record in (record for record in caplog.records if record.name.startswith("app")):
        for plaintext in PLAINTEXT:
            assert plaintext not in record.getMessage().lower(), record.getMessage()


async def test_list_filter_paginate_and_delete(
    client: AsyncClient, officer_headers: dict[str, str], integration_headers: dict[str, str]
) -> None:
    [older] = await _add(client, officer_headers, email="older@example.com")
    [newer] = await _add(client, officer_headers, phone=PHONE, channels=["phone"])

    page = (await client.get("/v1/suppressions", headers=officer_headers)).json()
    assert [item["id"] for item in page["items"]] == [newer["id"], older["id"]]
    assert page["next_cursor"] is None
    assert set(page["items"][0]) == {
        "id",
        "identity_kind",
        "channels",
        "reason",
        "request_id",
        "created_at",
        "updated_at",
    }

    first = (await client.get("/v1/suppressions?limit=1", headers=officer_headers)).json()
    assert [item["id"] for item in first["items"]] == [newer["id"]]
    rest = await client.get(
        "/v1/suppressions",
        headers=officer_headers,
        params={"limit": 1, "cursor": first["next_cursor"]},
    )
    assert [item["id"] for item in rest.json()["items"]] == [older["id"]]

    by_phone = await client.get(
        "/v1/suppressions", headers=officer_headers, params={"phone": "+441632960001"}
    )
    assert [item["id"] for item in by_phone.json()["items"]] == [newer["id"]]
    by_email = await client.get(
        "/v1/suppressions", headers=officer_headers, params={"email": "OLDER@example.com"}
    )
    assert [item["id"] for item in by_email.json()["items"]] == [older["id"]]
    nobody = await client.get(
        "/v1/suppressions", headers=officer_headers, params={"email": "nobody@example.com"}
    )
    assert nobody.json()["items"] == []

    response = await client.delete(f"/v1/suppressions/{newer['id']}", headers=officer_headers)
    assert response.status_code == 204
    assert await _check(client, integration_headers, phone=PHONE) == {
        "suppressed": False,
        "channels": [],
    }
    again = await client.delete(f"/v1/suppressions/{newer['id']}", headers=officer_headers)
    assert again.status_code == 404
    assert again.headers["content-type"].startswith(PROBLEM_JSON)
    missing = await client.delete(f"/v1/suppressions/{uuid.uuid4()}", headers=officer_headers)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "secret"),
    [
        ({"email": "jane.doe.secret-at-example.com"}, "jane.doe.secret"),
        ({"email": "jane.secret@"}, "jane.secret"),
        ({"phone": "+44 16"}, "+44 16"),
        ({"phone": "+44 1632 96000112345"}, "96000112345"),
        ({"phone": "call jane secret"}, "jane secret"),
        ({"email": "ok@example.com", "phone": "not-a-phone-secret"}, "not-a-phone-secret"),
        ({}, ""),
        ({"email": None, "phone": None}, ""),
        ({"email": "ok@example.com", "name": "Jane Secret"}, "Jane Secret"),
    ],
)
async def test_invalid_identities_are_422_without_echo(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    body: dict[str, Any],
    secret: str,
) -> None:
    secrets = (secret,) if secret else ()
    response = await client.post("/v1/suppressions/check", headers=integration_headers, json=body)
    _assert_422_without_echo(response, *secrets)
    response = await client.post("/v1/suppressions", headers=officer_headers, json=body)
    _assert_422_without_echo(response, *secrets)


@pytest.mark.parametrize("phone", ["12345", "1234567", "+4412345", "01632 961000"])
async def test_numbers_that_are_not_valid_are_refused_like_at_intake(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    phone: str,
) -> None:
    digits = "".join(ch for ch in phone if ch.isdigit())
    response = await client.post(
        "/v1/suppressions/check", headers=integration_headers, json={"phone": phone}
    )
    _assert_422_without_echo(response, digits)
    response = await client.post("/v1/suppressions", headers=officer_headers, json={"phone": phone})
    _assert_422_without_echo(response, digits)
    response = await client.get(
        "/v1/suppressions", headers=officer_headers, params={"phone": phone}
    )
    _assert_422_without_echo(response, digits)


@pytest.mark.parametrize(
    ("phone", "same"),
    [("07700 900123", "+447700900123"), ("0115 496 0999", "+44 115 496 0999")],
)
async def test_drama_numbers_are_kept_like_at_intake(
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
    phone: str,
    same: str,
) -> None:
    await _add(client, officer_headers, phone=phone, channels=["sms"])
    assert await _check(client, integration_headers, phone=same) == {
        "suppressed": True,
        "channels": ["sms"],
    }


@pytest.mark.parametrize(
    "params", [{"email": "jane.secret-at-example.com"}, {"phone": "jane-secret-phone"}]
)
async def test_invalid_list_filter_is_422_without_echo(
    client: AsyncClient, officer_headers: dict[str, str], params: dict[str, str]
) -> None:
    response = await client.get("/v1/suppressions", headers=officer_headers, params=params)
    _assert_422_without_echo(response, next(iter(params.values())))


@pytest.mark.parametrize("channels", [[], ["fax"], ["email", "carrier-pigeon"]])
async def test_channels_must_be_known(
    client: AsyncClient, officer_headers: dict[str, str], channels: list[str]
) -> None:
    response = await client.post(
        "/v1/suppressions", headers=officer_headers, json={"email": EMAIL, "channels": channels}
    )
    _assert_422_without_echo(response, EMAIL)


async def test_omitted_channels_suppress_every_channel(
    client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    [entry] = await _add(client, officer_headers, email=EMAIL)
    assert entry["channels"] == ["email", "phone", "post", "sms"]


async def test_request_suppression_merges_and_removal_is_audited(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str], settings: Settings
) -> None:
    """What fulfilment does: suppress from a request, then an officer removes the entry."""
    await _add(client, officer_headers, email=EMAIL, channels=["post"])
    dsr = await create_request(client, officer_headers, type="erasure")
    async with app.state.sessionmaker() as session:
        entries = await suppression.suppress(
            session,
            settings=settings,
            email="jane.doe@example.com",
            channels=["email", "sms"],
            reason="erasure",
            request_id=uuid.UUID(dsr["id"]),
            now=utcnow(),
        )
        await session.commit()
        assert len(entries) == 1
        assert await suppression.check(session, settings=settings, email=EMAIL) == (
            True,
            ["email", "post", "sms"],
        )

    [entry] = (await client.get("/v1/suppressions", headers=officer_headers)).json()["items"]
    assert entry["reason"] == "erasure"
    assert entry["request_id"] == dsr["id"]
    assert entry["channels"] == ["email", "post", "sms"]

    response = await client.delete(f"/v1/suppressions/{entry['id']}", headers=officer_headers)
    assert response.status_code == 204
    events = await client.get(f"/v1/requests/{dsr['id']}/events", headers=officer_headers)
    removed = [event for event in events.json()["items"] if event["type"] == "suppression.removed"]
    assert len(removed) == 1
    assert removed[0]["data"]["entry_id"] == entry["id"]


async def test_service_refuses_unknown_reason_and_empty_identity(
    app: FastAPI, settings: Settings
) -> None:
    async with app.state.sessionmaker() as session:
        for kwargs in (
            {"email": EMAIL, "reason": "whim"},
            {"reason": "manual"},
            {"email": EMAIL, "reason": "manual", "channels": []},
        ):
            arguments: dict[str, Any] = {"channels": ["email"], **kwargs}
            with pytest.raises(UnprocessableEntity):
                await suppression.suppress(session, settings=settings, now=utcnow(), **arguments)
        assert await suppression.check(session, settings=settings) == (False, [])
