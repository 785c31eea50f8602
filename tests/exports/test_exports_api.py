"""Export routes through the ASGI app on SQLite and PostgreSQL: list, download, the subject's
signed link, expiry (410), forged links (404), visibility, audit and the expiry sweep."""

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from jose import jwt
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.crypto import derived_key
from app.data_sources.connectors.base import ColumnInfo, RecordBatch
from app.exports.service import (
    delete_expired_exports,
    export_directory,
    issue_download_token,
    record_exports,
)
from app.exports.writer import ExportFile, write_exports
from app.models import Export, OutboxEvent
from tests.conftest import get_token, make_settings, new_client
from tests.factories import create_request

PROBLEM_JSON = "application/problem+json"
PUBLIC_URL = "https://dsr.example.org"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
COLUMNS = (
    ColumnInfo("id", "identifiers", False),
    ColumnInfo("email", "contact", True),
    ColumnInfo("born", "profile", True),
)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The shared fixture's settings, with exports written under this test's tmp_path."""
    return make_settings(
        database_url, export_dir=str(tmp_path / "exports"), public_url=PUBLIC_URL + "/"
    )


@pytest.fixture(autouse=True)
def fixed_clock(app: FastAPI) -> None:
    app.state.clock = lambda: NOW


async def _records() -> AsyncIterator[RecordBatch]:
    yield RecordBatch(
        "crm", "contacts", COLUMNS, 0, [(1, "jane.doe@example.com", date(1980, 1, 2))]
    )


async def make_exports(
    app: FastAPI, request_id: str, formats: tuple[str, ...] = ("json", "csv"), *, at: datetime = NOW
) -> dict[str, ExportFile]:
    """Write the request's export files and record them, as fulfilment does."""
    settings: Settings = app.state.settings
    dsr_id = uuid.UUID(request_id)
    files = await write_exports(
        _records(),
        directory=export_directory(settings, dsr_id),
        formats=formats,
        header={"export": {"request_id": request_id}},
    )
    async with app.state.sessionmaker() as session:
        await record_exports(session, request_id=dsr_id, files=files, settings=settings, now=at)
        await session.commit()
    return files


async def listed(client: AsyncClient, headers: dict[str, str], request_id: str) -> list[Any]:
    response = await client.get(f"/v1/requests/{request_id}/exports", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return list(response.json()["items"])


async def audit(client: AsyncClient, headers: dict[str, str], request_id: str) -> list[Any]:
    response = await client.get(f"/v1/requests/{request_id}/events", headers=headers)
    assert response.status_code == 200, response.text
    return [event for event in response.json()["items"] if event["type"] == "export.downloaded"]


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = dict(response.json())
    assert body["status"] == status
    return body


def link_path(url: str) -> str:
    assert url.startswith(PUBLIC_URL + "/v1/exports/"), url
    return url.removeprefix(PUBLIC_URL)


def assert_download_headers(response: Any, file: ExportFile, media_type: str) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"] == f'attachment; filename="{file.file_name}"'
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-length"] == str(file.size_bytes)
    assert response.content == file.path.read_bytes()
    assert hashlib.sha256(response.content).hexdigest() == file.sha256


# ---------------------------------------------------------------- list and download


async def test_list_and_download_both_formats(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    officer_id, secret = await new_client(client, admin_headers, "officer")
    officer = {"Authorization": f"Bearer {await get_token(client, officer_id, secret)}"}
    request_id = (await create_request(client, officer))["id"]
    assert await listed(client, officer, request_id) == []
    files = await make_exports(app, request_id)

    items = await listed(client, officer, request_id)
    assert {item["format"] for item in items} == {"json", "csv"}
    for item in items:
        file = files[item["format"]]
        assert item["id"] == str(file.export_id)
        assert item["file_name"] == file.file_name
        assert item["size_bytes"] == file.size_bytes
        assert item["sha256"] == file.sha256
        assert item["expired"] is False
        assert item["download_count"] == 0
        assert datetime.fromisoformat(item["expires_at"]) == NOW + timedelta(hours=168)
        link_path(item["download_url"])

    response = await client.get(f"/v1/requests/{request_id}/export", headers=officer)
    assert_download_headers(response, files["json"], "application/json")
    response = await client.get(
        f"/v1/requests/{request_id}/export", headers=officer, params={"format": "csv"}
    )
    assert_download_headers(response, files["csv"], "application/zip")

    events = await audit(client, officer, request_id)
    assert [(event["actor"], event["data"]["format"]) for event in events] == [
        (officer_id, "json"),
        (officer_id, "csv"),
    ]
    assert {item["download_count"] for item in await listed(client, officer, request_id)} == {1}


async def test_newest_export_is_served(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    request_id = (await create_request(client, officer_headers))["id"]
    await make_exports(app, request_id, ("json",), at=NOW - timedelta(hours=1))
    newest = await make_exports(app, request_id, ("json",))
    response = await client.get(f"/v1/requests/{request_id}/export", headers=officer_headers)
    assert_download_headers(response, newest["json"], "application/json")
    items = await listed(client, officer_headers, request_id)
    assert [item["id"] for item in items] == [
        str(newest["json"].export_id),
        items[1]["id"],
    ]


async def test_no_export_yet_is_404_and_a_bad_format_422(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    request_id = (await create_request(client, officer_headers))["id"]
    body = assert_problem(
        await client.get(f"/v1/requests/{request_id}/export", headers=officer_headers), 404
    )
    assert "fulfil the request first" in body["detail"]
    await make_exports(app, request_id, ("json",))
    response = await client.get(
        f"/v1/requests/{request_id}/export", headers=officer_headers, params={"format": "csv"}
    )
    assert "No csv export" in assert_problem(response, 404)["detail"]
    response = await client.get(
        f"/v1/requests/{request_id}/export", headers=officer_headers, params={"format": "xml"}
    )
    assert_problem(response, 422)
    missing = uuid.uuid4()
    assert_problem(
        await client.get(f"/v1/requests/{missing}/exports", headers=officer_headers), 404
    )


async def test_expired_export_is_410_and_listed_without_a_link(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    request_id = (await create_request(client, officer_headers))["id"]
    await make_exports(app, request_id)
    url = (await listed(client, officer_headers, request_id))[0]["download_url"]

    app.state.clock = lambda: NOW + timedelta(hours=168, seconds=1)
    for export_format in ("json", "csv"):
        response = await client.get(
            f"/v1/requests/{request_id}/export",
            headers=officer_headers,
            params={"format": export_format},
        )
        assert assert_problem(response, 410)["title"] == "Export expired"
    items = await listed(client, officer_headers, request_id)
    assert all(item["expired"] and item["download_url"] is None for item in items)
    # The subject's link has expired with it.
    body = assert_problem(await client.get(link_path(url)), 410)
    assert body["detail"] == "This download link has expired."


# ---------------------------------------------------------------- the subject's link


async def test_link_downloads_without_login_and_is_counted_and_audited(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    request_id = (await create_request(client, officer_headers))["id"]
    files = await make_exports(app, request_id)
    items = {item["format"]: item for item in await listed(client, officer_headers, request_id)}

    async with app.state.sessionmaker() as session:
        outbox_before = await session.scalar(select(func.count()).select_from(OutboxEvent))
    for export_format, media_type in (("json", "application/json"), ("csv", "application/zip")):
        response = await client.get(link_path(items[export_format]["download_url"]))
        assert_download_headers(response, files[export_format], media_type)
        assert response.headers["referrer-policy"] == "no-referrer"
    response = await client.get(link_path(items["csv"]["download_url"]))
    assert response.status_code == 200

    counts = {
        item["format"]: item["download_count"]
        for item in await listed(client, officer_headers, request_id)
    }
    assert counts == {"json": 1, "csv": 2}
    events = await audit(client, officer_headers, request_id)
    assert [event["actor"] for event in events] == ["download-link"] * 3
    assert events[0]["data"] == {"export_id": str(files["json"].export_id), "format": "json"}
    async with app.state.sessionmaker() as session:
        # Downloads are audited only: no webhook event.
        assert await session.scalar(select(func.count()).select_from(OutboxEvent)) == outbox_before


def _token(claims: dict[str, Any], key: bytes, algorithm: str = "HS256") -> str:
    return str(jwt.encode(claims, key, algorithm=algorithm))


async def test_forged_or_garbled_links_are_404(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str], settings: Settings
) -> None:
    request_id = (await create_request(client, officer_headers))["id"]
    files = await make_exports(app, request_id, ("json",))
    export_id = str(files["json"].export_id)
    exp = int((NOW + timedelta(days=1)).timestamp())
    link_key = derived_key(settings.secret_key, "export-download-link")
    claims = {"aud": "dsr-export", "sub": export_id, "exp": exp}
    genuine = _token(claims, link_key)
    assert (await client.get(f"/v1/exports/{genuine}")).status_code == 200

    header, _payload, signature = genuine.split(".")
    other_payload = _token({**claims, "sub": str(uuid.uuid4())}, link_key).split(".")[1]
    forged = [
        "garbage",
        "a.b.c",
        _token(claims, b"an attacker's key"),
        _token(claims, derived_key(settings.secret_key, "access-token")),
        _token(claims, link_key, algorithm="HS512"),
        _token({**claims, "aud": "dsr-api"}, link_key),
        _token({"aud": "dsr-export", "sub": export_id}, link_key),  # no expiry
        _token({**claims, "sub": "not-a-uuid"}, link_key),
        _token({**claims, "sub": str(uuid.uuid4())}, link_key),  # genuine, no such export
        f"{header}.{other_payload}.{signature}",  # payload swapped under a real signature
        genuine + "x" * 2000,
    ]
    for token in forged:
        body = assert_problem(await client.get(f"/v1/exports/{token}"), 404)
        assert token not in body["detail"]


async def test_expired_genuine_link_is_410_but_expired_forged_link_404(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str], settings: Settings
) -> None:
    request_id = (await create_request(client, officer_headers))["id"]
    files = await make_exports(app, request_id, ("json",))
    export_id = files["json"].export_id
    past = NOW - timedelta(seconds=1)
    body = assert_problem(
        await client.get(f"/v1/exports/{issue_download_token(export_id, past, settings)}"), 410
    )
    assert body["title"] == "Download link expired"
    assert body["detail"] == "This download link has expired."

    forged = _token(
        {"aud": "dsr-export", "sub": str(export_id), "exp": int(past.timestamp())}, b"other key"
    )
    assert_problem(await client.get(f"/v1/exports/{forged}"), 404)


async def test_sweep_deletes_expired_files_and_their_links_answer_410(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str], settings: Settings
) -> None:
    request_id = (await create_request(client, officer_headers))["id"]
    old = await make_exports(app, request_id, at=NOW - timedelta(days=8))
    fresh = await make_exports(app, request_id, ("json",))
    # A file already gone is no obstacle.
    old["csv"].path.unlink()

    async with app.state.sessionmaker() as session:
        assert await delete_expired_exports(session, settings=settings, now=NOW) == 2
        await session.commit()
    assert not old["json"].path.exists()
    assert fresh["json"].path.exists()
    async with app.state.sessionmaker() as session:
        assert await delete_expired_exports(session, settings=settings, now=NOW) == 0
        deleted = await session.get(Export, old["json"].export_id)
        assert deleted is not None and deleted.deleted_at == NOW

    # Even a link that has not itself expired: the file is gone.
    token = issue_download_token(old["json"].export_id, NOW + timedelta(days=1), settings)
    assert_problem(await client.get(f"/v1/exports/{token}"), 410)
    items = await listed(client, officer_headers, request_id)
    assert [item["expired"] for item in items] == [False, True, True]
    response = await client.get(
        f"/v1/requests/{request_id}/export", headers=officer_headers, params={"format": "csv"}
    )
    assert_problem(response, 410)
    response = await client.get(f"/v1/requests/{request_id}/export", headers=officer_headers)
    assert_download_headers(response, fresh["json"], "application/json")


async def test_sweeps_in_parallel_workers_skip_each_others_rows(
    backend: str,
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    settings: Settings,
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time; there is nothing to skip")
    request_id = (await create_request(client, officer_headers))["id"]
    files = await make_exports(app, request_id, at=NOW - timedelta(days=8))
    async with app.state.sessionmaker() as first, app.state.sessionmaker() as second:
        assert await delete_expired_exports(first, settings=settings, now=NOW, limit=1) == 1
        # The first worker still holds its row: the second takes the other one only.
        swept = await asyncio.wait_for(
            delete_expired_exports(second, settings=settings, now=NOW), timeout=10
        )
        assert swept == 1
        await first.commit()
        await second.commit()
    assert not any(file.path.exists() for file in files.values())


# ---------------------------------------------------------------- visibility


async def test_integrations_see_only_their_own_requests_exports(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    own = (await create_request(client, integration_headers))["id"]
    foreign = (await create_request(client, officer_headers))["id"]
    own_files = await make_exports(app, own, ("json",))
    await make_exports(app, foreign, ("json",))

    assert len(await listed(client, integration_headers, own)) == 1
    response = await client.get(f"/v1/requests/{own}/export", headers=integration_headers)
    assert_download_headers(response, own_files["json"], "application/json")

    for path in (f"/v1/requests/{foreign}/exports", f"/v1/requests/{foreign}/export"):
        foreign_answer = await client.get(path, headers=integration_headers)
        missing_answer = await client.get(
            path.replace(foreign, str(uuid.uuid4())), headers=integration_headers
        )
        assert_problem(foreign_answer, 404)
        assert foreign_answer.json() == missing_answer.json()
    assert await audit(client, officer_headers, foreign) == []


async def test_unauthenticated_calls_are_401_except_the_link(
    app: FastAPI, client: AsyncClient, officer_headers: dict[str, str]
) -> None:
    request_id = (await create_request(client, officer_headers))["id"]
    files = await make_exports(app, request_id, ("json",))
    for path in (f"/v1/requests/{request_id}/exports", f"/v1/requests/{request_id}/export"):
        assert_problem(await client.get(path), 401)
    (export,) = await listed(client, officer_headers, request_id)
    # The link itself is the permission: no token, and the file comes back.
    downloaded = await client.get(link_path(export["download_url"]))
    assert_download_headers(downloaded, files["json"], "application/json")


def test_link_expiry_is_the_exports(settings: Settings) -> None:
    expires_at = NOW + timedelta(hours=5)
    token = issue_download_token(uuid.uuid4(), expires_at, settings)
    claims = jwt.get_unverified_claims(token)
    assert claims["exp"] == int(expires_at.timestamp()) and claims["aud"] == "dsr-export"
    assert len(token) < 300
