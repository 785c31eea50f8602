"""Authorisation: every route in the OpenAPI document x every kind of caller.

``MATRIX`` is the contract in one table. The matrix test walks ``app.openapi()["paths"]``,
so a new route without a row fails the suite until someone decides who may call it.

Per-request routes act on a request *submitted by the officer* (so never the integration's
own), first brought to the status in ``SCENARIOS`` so that the action is legal for the
officer and admin columns. Integrations get 404 where they would otherwise learn that a
foreign request exists, and 403 on officer-only actions because the role check runs before
the request is loaded. ``verification`` is called with a document check (officer-only); its
``email_code`` method and ``verification/confirm`` also admit the submitting integration (see
tests/verification/test_verification_api.py).
"""

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, BasicAuth
from jose import jwt
from sqlalchemy import update
from sqlmodel import col

from app.auth.scopes import Scope
from app.auth.tokens import TOKEN_AUDIENCE, TOKEN_ISSUER
from app.core.crypto import derived_key
from app.core.time import utcnow
from app.main import create_app
from app.models import (
    Client,
    DsrRequest,
    FulfilmentTask,
    RequestMessage,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests.conftest import ADMIN_ID, ADMIN_SECRET, TEST_SECRET_KEY, make_settings, new_client
from tests.factories import create_request, request_body

PROBLEM_JSON = "application/problem+json"
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}

# ------------------------------------------------------------------------------ callers

ANONYMOUS = "anonymous"  # no Authorization header at all
GARBAGE = "garbage"  # "Bearer" followed by something that is not a JWT
FORGED = "forged"  # admin claims, HS256, signed with another key
ALG_NONE = "alg_none"  # admin claims, unsigned ("alg": "none")
WRONG_ALG = "wrong_alg"  # admin claims, signed with the right key but HS512 (not allowlisted)
TAMPERED = "tampered"  # the integration's real token, payload rewritten to admin
EXPIRED = "expired"  # admin claims, right key and algorithm, expired an hour ago
INTEGRATION = "integration"
OFFICER = "officer"
ADMIN = "admin"

BAD_TOKEN_CALLERS = (ANONYMOUS, GARBAGE, FORGED, ALG_NONE, WRONG_ALG, TAMPERED, EXPIRED)
ROLE_CALLERS = (INTEGRATION, OFFICER, ADMIN)
CALLERS = BAD_TOKEN_CALLERS + ROLE_CALLERS

# ------------------------------------------------------------------------------ the matrix

RID = "/v1/requests/{request_id}"
CID = "/v1/clients/{client_id}"
WID = "/v1/webhooks/{webhook_id}"
SID = "/v1/suppressions/{suppression_id}"
DSID = "/v1/data-sources/{source_id}"
FID = "/v1/calendar-feeds/{feed_id}"
UID = "/v1/users/{user_id}"
SUPPRESSION_BODY = {"email": "matrix@example.com", "channels": ["email"]}

# The first column applies to every caller in BAD_TOKEN_CALLERS.
# fmt: off
MATRIX: dict[tuple[str, str], tuple[int, int, int, int]] = {
    #  method  path                              no/bad token  integration  officer  admin
    ("GET",  "/healthz"):                        (200,         200,         200,     200),
    ("GET",  "/readyz"):                         (200,         200,         200,     200),
    ("POST", "/v1/oauth/token"):                 (200,         200,         200,     200),
    ("POST", "/v1/clients"):                     (401,         403,         403,     201),
    ("GET",  "/v1/clients"):                     (401,         403,         403,     200),
    ("DELETE", CID):                             (401,         403,         403,     204),
    ("POST", CID + "/disable"):                  (401,         403,         403,     200),
    ("POST", CID + "/enable"):                   (401,         403,         403,     200),
    ("POST", CID + "/rotate-secret"):            (401,         403,         403,     200),
    # People's console accounts: admins only.
    ("POST", "/v1/users"):                       (401,         403,         403,     201),
    ("GET",  "/v1/users"):                       (401,         403,         403,     200),
    ("GET",  UID):                               (401,         403,         403,     200),
    ("POST", UID + "/disable"):                  (401,         403,         403,     200),
    ("POST", UID + "/enable"):                   (401,         403,         403,     200),
    ("POST", UID + "/reset-password"):           (401,         403,         403,     200),
    ("POST", "/v1/requests"):                    (401,         201,         201,     201),
    ("GET",  "/v1/requests"):                    (401,         200,         200,     200),
    ("POST", "/v1/requests/search"):             (401,         200,         200,     200),
    ("GET",  RID):                               (401,         404,         200,     200),
    ("GET",  RID + "/events"):                   (401,         404,         200,     200),
    ("POST", RID + "/verification"):             (401,         403,         200,     200),
    ("POST", RID + "/verification/confirm"):     (401,         404,         422,     422),
    ("POST", RID + "/pause"):                    (401,         403,         200,     200),
    ("POST", RID + "/resume"):                   (401,         403,         200,     200),
    ("POST", RID + "/extend"):                   (401,         403,         200,     200),
    ("POST", RID + "/reject"):                   (401,         403,         200,     200),
    ("POST", RID + "/cancel"):                   (401,         404,         200,     200),
    ("POST", RID + "/complete"):                 (401,         403,         200,     200),
    # A task source is registered first, so the officer's call queues the work.
    ("POST", RID + "/fulfil"):                   (401,         403,         200,     200),
    ("POST", RID + "/lift-restriction"):         (401,         403,         200,     200),
    # A task source is registered first: it is listed as not previewable.
    ("GET",  RID + "/plan"):                     (401,         403,         200,     200),
    ("POST", RID + "/approve"):                  (401,         403,         200,     200),
    ("POST", RID + "/assign"):                   (401,         403,         200,     200),
    ("POST", RID + "/notes"):                    (401,         403,         201,     201),
    ("GET",  RID + "/notes"):                    (401,         403,         200,     200),
    # Each id is answered in the body (here one missing request: 404 inside a 200).
    ("POST", "/v1/requests/bulk"):               (401,         403,         200,     200),
    ("GET",  RID + "/tasks"):                    (401,         404,         200,     200),
    # The task is assigned to the admin client; officers see every task.
    ("GET",  RID + "/tasks/{task_id}"):          (401,         404,         200,     200),
    ("POST", RID + "/tasks/{task_id}"):          (401,         404,         200,     200),
    # Correspondence is for officers: integrations are refused before the request is read.
    ("POST", RID + "/messages"):                 (401,         403,         201,     201),
    ("GET",  RID + "/messages"):                 (401,         403,         200,     200),
    ("POST", RID + "/messages/reply"):           (401,         403,         201,     201),
    # No export exists in the matrix: only who may ask is checked (exports/test_exports_api.py).
    ("GET",  RID + "/exports"):                  (401,         404,         200,     200),
    ("GET",  RID + "/export"):                   (401,         404,         404,     404),
    # The subject's link needs no login; any Authorization header is ignored.
    ("GET",  "/v1/exports/{token}"):             (404,         404,         404,     404),
    ("POST", "/v1/webhooks"):                    (401,         201,         201,     201),
    ("GET",  "/v1/webhooks"):                    (401,         200,         200,     200),
    ("GET",  WID):                               (401,         404,         200,     200),
    ("DELETE", WID):                             (401,         404,         204,     204),
    ("POST", WID + "/rotate-secret"):            (401,         404,         200,     200),
    ("POST", WID + "/enable"):                   (401,         404,         200,     200),
    ("GET",  WID + "/deliveries"):               (401,         404,         200,     200),
    ("POST", WID + "/deliveries/{delivery_id}/retry"): (401,   404,         202,     202),
    ("POST", "/v1/suppressions/check"):          (401,         200,         200,     200),
    ("POST", "/v1/suppressions"):                (401,         403,         201,     201),
    ("GET",  "/v1/suppressions"):                (401,         403,         200,     200),
    ("DELETE", SID):                             (401,         403,         204,     204),
    ("POST", "/v1/data-sources"):                (401,         403,         403,     201),
    ("GET",  "/v1/data-sources"):                (401,         403,         403,     200),
    ("GET",  DSID):                              (401,         403,         403,     200),
    ("DELETE", DSID):                            (401,         403,         403,     204),
    ("POST", DSID + "/test"):                    (401,         403,         403,     200),
    ("GET",  "/v1/processing-register"):         (401,         200,         200,     200),
    ("GET",  "/v1/reports/summary"):             (401,         403,         200,     200),
    ("GET",  "/v1/reports/monthly"):             (401,         403,         200,     200),
    ("GET",  "/v1/reports/register.csv"):        (401,         403,         200,     200),
    ("POST", "/v1/calendar-feeds"):              (401,         403,         201,     201),
    ("GET",  "/v1/calendar-feeds"):              (401,         403,         200,     200),
    # A feed the officer created is revoked; the refused calls must leave it working.
    ("DELETE", FID):                             (401,         403,         204,     204),
    # The feed's secret URL needs no login; any Authorization header is ignored.
    ("GET",  "/v1/calendar/{token}.ics"):        (404,         404,         404,     404),
}
# fmt: on

AWAITING = "awaiting_verification"
IN_PROGRESS = "in_progress"
PAUSED = "paused"
COMPLETED = "completed"
REJECTED = "rejected"
CANCELLED = "cancelled"

DOCUMENT_PASSED = {
    "method": "document",
    "document_type": "passport",
    "business_address_confirmed": True,
    "result": "passed",
}
ACTION_BODIES: dict[str, dict[str, Any] | None] = {
    "verification": DOCUMENT_PASSED,
    "pause": {"reason": "awaiting_clarification", "note": "asked which account"},
    "resume": None,
    "extend": {"reason": "Complex request spanning several systems"},
    "reject": {"reason": "manifestly_unfounded", "explanation": "Repeated request"},
    "cancel": {"note": "withdrawn by the subject"},
    "complete": {"summary": "Answered by email"},
    "fulfil": None,
}

# Per-request routes: the status the officer's request is brought to first, and the body.
# fmt: off
SCENARIOS: dict[str, tuple[str, dict[str, Any] | None]] = {
    RID:                        (AWAITING,    None),
    RID + "/events":            (AWAITING,    None),
    RID + "/verification":      (AWAITING,    ACTION_BODIES["verification"]),
    # No code was sent: the caller is admitted and told "invalid or expired code" (422).
    RID + "/verification/confirm": (AWAITING, {"code": "000000"}),
    RID + "/pause":             (IN_PROGRESS, ACTION_BODIES["pause"]),
    RID + "/resume":            (PAUSED,      ACTION_BODIES["resume"]),
    RID + "/extend":            (IN_PROGRESS, ACTION_BODIES["extend"]),
    RID + "/reject":            (AWAITING,    ACTION_BODIES["reject"]),
    RID + "/cancel":            (AWAITING,    ACTION_BODIES["cancel"]),
    RID + "/complete":          (IN_PROGRESS, ACTION_BODIES["complete"]),
    RID + "/fulfil":            (IN_PROGRESS, ACTION_BODIES["fulfil"]),
    RID + "/lift-restriction":  (IN_PROGRESS, {"reason": "accuracy check finished"}),
    RID + "/plan":              (IN_PROGRESS, None),
    RID + "/approve":           (IN_PROGRESS, None),
    RID + "/assign":            (AWAITING,    {"assignee": ADMIN_ID}),
    # GET and POST share the path; the GET ignores the body.
    RID + "/notes":             (AWAITING,    {"text": "matrix note"}),
    RID + "/tasks":             (IN_PROGRESS, None),
    RID + "/tasks/{task_id}":   (IN_PROGRESS, {"status": "done", "note": "matrix"}),
    RID + "/messages":          (IN_PROGRESS, {"kind": "clarification", "text": "Which account?"}),
    # An information message, back-dated to 1 January, is what the reply answers.
    RID + "/messages/reply":    (IN_PROGRESS, {"text": "The old one.",
                                               "received_at": "2026-01-02T09:00:00Z"}),
    RID + "/exports":           (AWAITING,    None),
    RID + "/export":            (AWAITING,    None),
}

# Per-endpoint routes act on a webhook endpoint *registered by the officer* (so never the
# integration's own): whether it is disabled first, and whether it has a (failed) delivery.
WEBHOOK_SCENARIOS: dict[str, tuple[bool, bool]] = {
    #  path                                      disabled  delivery
    WID:                                        (False,    False),
    WID + "/rotate-secret":                     (False,    False),
    WID + "/enable":                            (True,     False),
    WID + "/deliveries":                        (False,    True),
    WID + "/deliveries/{delivery_id}/retry":    (False,    True),
}

# Per-client routes act on a fresh integration client, disabled first or not.
CLIENT_SCENARIOS: dict[str, bool] = {
    CID:                                        False,
    CID + "/disable":                           False,
    CID + "/enable":                            True,
    CID + "/rotate-secret":                     False,
}
# fmt: on

OFFICER_ONLY_ACTIONS = [action for action in ACTION_BODIES if action != "cancel"]

# ------------------------------------------------------------------------------ helpers


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _admin_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": TOKEN_ISSUER,
        "aud": TOKEN_AUDIENCE,
        "sub": ADMIN_ID,
        "role": "admin",
        "scope": " ".join(sorted(Scope)),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return claims


def _sign(
    claims: dict[str, Any], *, secret_key: str = TEST_SECRET_KEY, algorithm: str = "HS256"
) -> str:
    """A token made exactly as the service makes them, unless told otherwise."""
    return str(jwt.encode(claims, derived_key(secret_key, "access-token"), algorithm=algorithm))


def _unsigned(claims: dict[str, Any]) -> str:
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}."


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(role="admin", scope=" ".join(sorted(Scope)))
    return f"{header}.{_b64url(json.dumps(claims).encode())}.{signature}"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _caller_headers(
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> dict[str, dict[str, str]]:
    now = int(time.time())
    integration_token = integration_headers["Authorization"].removeprefix("Bearer ")
    return {
        ANONYMOUS: {},
        GARBAGE: _bearer("not-a-jwt"),
        FORGED: _bearer(_sign(_admin_claims(), secret_key="an-attacker-chose-this-key-0123456")),
        ALG_NONE: _bearer(_unsigned(_admin_claims())),
        WRONG_ALG: _bearer(_sign(_admin_claims(), algorithm="HS512")),
        TAMPERED: _bearer(_tampered(integration_token)),
        EXPIRED: _bearer(_sign(_admin_claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600))),
        INTEGRATION: integration_headers,
        OFFICER: officer_headers,
        ADMIN: admin_headers,
    }


def _expected(method: str, path: str, caller: str) -> int:
    row = MATRIX[(method, path)]
    if caller in BAD_TOKEN_CALLERS:
        return row[0]
    return row[1 + ROLE_CALLERS.index(caller)]


def _openapi_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    ]


def _problem_errors(response: Any) -> list[str]:
    """What is wrong with an error response's RFC 9457 shape (empty when it is right)."""
    wrong = []
    if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
        wrong.append(f"content-type {response.headers.get('content-type')!r}")
    try:
        body = response.json()
    except ValueError:
        return [*wrong, "body is not JSON"]
    for key in ("type", "title", "status", "detail"):
        if key not in body:
            wrong.append(f"missing {key!r}")
    if body.get("status") != response.status_code:
        wrong.append(f"body status {body.get('status')} != {response.status_code}")
    return wrong


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert not _problem_errors(response), (_problem_errors(response), response.text)
    return dict(response.json())


async def _act(client: AsyncClient, headers: dict[str, str], request_id: str, action: str) -> Any:
    return await client.post(
        f"/v1/requests/{request_id}/{action}", headers=headers, json=ACTION_BODIES[action]
    )


async def request_in(
    client: AsyncClient, headers: dict[str, str], officer_headers: dict[str, str], status: str
) -> str:
    """A request submitted with ``headers`` and moved by the officer to ``status``."""
    request_id = str((await create_request(client, headers))["id"])
    steps = {
        AWAITING: [],
        IN_PROGRESS: ["verification"],
        PAUSED: ["verification", "pause"],
        COMPLETED: ["verification", "complete"],
        REJECTED: ["reject"],
        CANCELLED: ["cancel"],
    }[status]
    for action in steps:
        response = await _act(client, officer_headers, request_id, action)
        assert response.status_code == 200, response.text
    return request_id


async def _snapshot(client: AsyncClient, officer_headers: dict[str, str], request_id: str) -> Any:
    response = await client.get(f"/v1/requests/{request_id}", headers=officer_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["status"], body["updated_at"], body["deadline"]


async def webhook_in(
    app: FastAPI,
    client: AsyncClient,
    officer_headers: dict[str, str],
    *,
    disabled: bool,
    with_delivery: bool,
) -> tuple[str, str | None]:
    """An endpoint registered by the officer, optionally disabled, with a failed delivery."""
    response = await client.post(
        "/v1/webhooks", headers=officer_headers, json={"url": "http://127.0.0.1:9/matrix"}
    )
    assert response.status_code == 201, response.text
    webhook_id = uuid.UUID(response.json()["id"])
    delivery_id = None
    now = utcnow()
    async with app.state.sessionmaker() as session:
        if disabled:
            endpoint = await session.get(WebhookEndpoint, webhook_id)
            assert endpoint is not None
            endpoint.active = False
            endpoint.disabled_reason = "endpoint answered 410 Gone"
            endpoint.disabled_at = now
        if with_delivery:
            # Failed, so a background worker leaves it alone.
            delivery = WebhookDelivery(
                endpoint_id=webhook_id,
                event_type="request.received",
                payload={"type": "request.received", "timestamp": now.isoformat(), "data": {}},
                status="failed",
                attempt_count=1,
                next_attempt_at=now,
                created_at=now,
                completed_at=now,
            )
            session.add(delivery)
            delivery_id = str(delivery.id)
        await session.commit()
    return str(webhook_id), delivery_id


async def client_in(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], *, disabled: bool
) -> str:
    """A fresh integration client, optionally disabled."""
    client_id, _secret = await new_client(client, admin_headers, "integration")
    if disabled:
        async with app.state.sessionmaker.begin() as session:
            await session.execute(
                update(Client).where(col(Client.client_id) == client_id).values(active=False)
            )
    return client_id


async def _client_snapshot(
    client: AsyncClient, admin_headers: dict[str, str], client_id: str
) -> Any:
    response = await client.get("/v1/clients", headers=admin_headers, params={"limit": 200})
    assert response.status_code == 200, response.text
    return [item for item in response.json()["items"] if item["client_id"] == client_id]


async def _person_snapshot(client: AsyncClient, admin_headers: dict[str, str], user_id: str) -> Any:
    response = await client.get(f"/v1/users/{user_id}", headers=admin_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def suppression_in(client: AsyncClient, officer_headers: dict[str, str]) -> str:
    """A suppression entry added by the officer (a fresh address each time)."""
    body = {**SUPPRESSION_BODY, "email": f"matrix-{uuid.uuid4().hex[:8]}@example.com"}
    response = await client.post("/v1/suppressions", headers=officer_headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["items"][0]["id"])


async def calendar_feed_in(client: AsyncClient, officer_headers: dict[str, str]) -> tuple[str, str]:
    """A calendar feed the officer created: its id, and the path of its subscribe URL."""
    response = await client.post(
        "/v1/calendar-feeds", headers=officer_headers, json={"name": "Matrix feed"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], "/v1/calendar/" + body["url"].rsplit("/v1/calendar/", 1)[1]


def data_source_body() -> dict[str, Any]:
    """A task source (no connection to test) assigned to the bootstrap admin client."""
    return {
        "name": f"matrix-{uuid.uuid4().hex[:8]}",
        "kind": "task",
        "assignee_client_id": ADMIN_ID,
    }


async def data_source_in(client: AsyncClient, admin_headers: dict[str, str]) -> str:
    response = await client.post("/v1/data-sources", headers=admin_headers, json=data_source_body())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def prepare_request(
    app: FastAPI, client: AsyncClient, admin_headers: dict[str, str], path: str, request_id: str
) -> str:
    """Fill what a per-request route needs beyond the status; returns the URL to call."""
    url = path.replace("{request_id}", request_id)
    if path.endswith(("/fulfil", "/plan", "/approve")):
        await data_source_in(client, admin_headers)
    if path.endswith("/messages/reply"):
        response = await client.post(
            f"/v1/requests/{request_id}/messages",
            headers=admin_headers,
            json={"kind": "information", "text": "We are looking into it."},
        )
        assert response.status_code == 201, response.text
        async with app.state.sessionmaker.begin() as session:
            await session.execute(
                update(RequestMessage).values(created_at=datetime(2026, 1, 1, tzinfo=UTC))
            )
    if path.endswith("/lift-restriction") or "/tasks" in path:
        source_id = uuid.UUID(await data_source_in(client, admin_headers))
        async with app.state.sessionmaker() as session:
            dsr = await session.get(DsrRequest, uuid.UUID(request_id))
            assert dsr is not None
            dsr.restricted_at = utcnow()
            task = FulfilmentTask(
                request_id=dsr.id,
                data_source_id=source_id,
                assignee_client_id=ADMIN_ID,
                created_at=utcnow(),
            )
            session.add(task)
            await session.commit()
        url = url.replace("{task_id}", str(task.id))
    return url


async def _data_source_snapshot(
    client: AsyncClient, admin_headers: dict[str, str], source_id: str
) -> Any:
    response = await client.get(f"/v1/data-sources/{source_id}", headers=admin_headers)
    return response.status_code, response.json()


async def _webhook_snapshot(
    client: AsyncClient, officer_headers: dict[str, str], webhook_id: str
) -> Any:
    response = await client.get(f"/v1/webhooks/{webhook_id}", headers=officer_headers)
    assert response.status_code == 200, response.text
    deliveries = await client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=officer_headers)
    return response.json(), deliveries.json()


# ------------------------------------------------------------------------------ the matrix


def test_matrix_has_a_row_for_every_route_and_no_stale_rows() -> None:
    app = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    routes = set(_openapi_routes(app))
    missing = sorted(routes - MATRIX.keys())
    stale = sorted(MATRIX.keys() - routes)
    assert not missing, f"routes without an authorisation matrix row: {missing}"
    assert not stale, f"matrix rows for routes that no longer exist: {stale}"
    per_request = {path for _method, path in routes if "{request_id}" in path}
    assert per_request == SCENARIOS.keys()
    per_webhook = {path for _method, path in routes if "{webhook_id}" in path}
    assert per_webhook == WEBHOOK_SCENARIOS.keys()
    per_client = {path for _method, path in routes if "{client_id}" in path}
    assert per_client == CLIENT_SCENARIOS.keys()


@pytest.mark.parametrize("caller", CALLERS)
async def test_authorisation_matrix(
    caller: str,
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    officer_headers: dict[str, str],
    integration_headers: dict[str, str],
) -> None:
    headers = _caller_headers(integration_headers, officer_headers, admin_headers)[caller]
    mismatches: list[str] = []
    # One request of the integration's and one not, both about the address the search asks
    # for: a list answering 2xx must show exactly what its caller may see.
    matrix_subject = {"email": "matrix@example.com"}
    own = (await create_request(client, integration_headers, subject=matrix_subject))["id"]
    foreign = (await create_request(client, officer_headers, subject=matrix_subject))["id"]
    for method, path in _openapi_routes(app):
        if (method, path) not in MATRIX:
            mismatches.append(f"{method} {path}: no matrix row")
            continue
        expected = _expected(method, path, caller)
        url, request_id, webhook_id, before = path, None, None, None
        source_id, client_id = None, None
        feed_path: str | None = None
        kwargs: dict[str, Any] = {}
        if path in SCENARIOS:
            status, body = SCENARIOS[path]
            request_id = await request_in(client, officer_headers, officer_headers, status)
            url = await prepare_request(app, client, admin_headers, path, request_id)
            before = await _snapshot(client, officer_headers, request_id)
            if body is not None:
                kwargs["json"] = body
        elif path in WEBHOOK_SCENARIOS:
            disabled, with_delivery = WEBHOOK_SCENARIOS[path]
            webhook_id, delivery_id = await webhook_in(
                app, client, officer_headers, disabled=disabled, with_delivery=with_delivery
            )
            before = await _webhook_snapshot(client, officer_headers, webhook_id)
            url = path.replace("{webhook_id}", webhook_id)
            if delivery_id is not None:
                url = url.replace("{delivery_id}", delivery_id)
        elif path == "/v1/oauth/token":
            kwargs["data"] = {
                "grant_type": "client_credentials",
                "client_id": ADMIN_ID,
                "client_secret": ADMIN_SECRET,
            }
        elif path in CLIENT_SCENARIOS:
            client_id = await client_in(app, client, admin_headers, disabled=CLIENT_SCENARIOS[path])
            before = await _client_snapshot(client, admin_headers, client_id)
            url = path.replace("{client_id}", client_id)
        elif (method, path) == ("POST", "/v1/clients"):
            kwargs["json"] = {"name": "Matrix CRM", "role": "integration"}
        elif (method, path) == ("POST", "/v1/users"):
            kwargs["json"] = {"email": f"m-{uuid.uuid4().hex[:8]}@example.com", "role": "officer"}
        elif path.startswith(UID):
            person = await client.post(
                "/v1/users",
                headers=admin_headers,
                json={"email": f"m-{uuid.uuid4().hex[:8]}@example.com", "role": "officer"},
            )
            assert person.status_code == 201, person.text
            client_id = person.json()["id"]
            before = await _person_snapshot(client, admin_headers, client_id)
            url = path.replace("{user_id}", client_id)
        elif (method, path) == ("POST", "/v1/requests"):
            kwargs["json"] = request_body()
        elif (method, path) == ("POST", "/v1/requests/search"):
            kwargs["json"] = {"subject_email": "matrix@example.com"}
        elif (method, path) == ("POST", "/v1/requests/bulk"):
            kwargs["json"] = {"action": "cancel", "ids": [str(uuid.uuid4())]}
        elif (method, path) == ("POST", "/v1/webhooks"):
            kwargs["json"] = {"url": "http://127.0.0.1:9/matrix"}
        elif (method, path) == ("POST", "/v1/suppressions/check"):
            kwargs["json"] = {"email": "matrix@example.com"}
        elif (method, path) == ("POST", "/v1/suppressions"):
            kwargs["json"] = SUPPRESSION_BODY
        elif path == SID:
            suppression_id = await suppression_in(client, officer_headers)
            url = path.replace("{suppression_id}", suppression_id)
        elif path == "/v1/exports/{token}":
            url = "/v1/exports/not-a-download-link"
        elif (method, path) == ("POST", "/v1/calendar-feeds"):
            kwargs["json"] = {"name": "Matrix feed"}
        elif path == FID:
            feed_id, feed_path = await calendar_feed_in(client, officer_headers)
            url = path.replace("{feed_id}", feed_id)
        elif path == "/v1/calendar/{token}.ics":
            url = "/v1/calendar/cal_not-a-feed.ics"
        elif (method, path) == ("POST", "/v1/data-sources"):
            kwargs["json"] = data_source_body()
        elif path.startswith(DSID):
            source_id = await data_source_in(client, admin_headers)
            before = await _data_source_snapshot(client, admin_headers, source_id)
            url = path.replace("{source_id}", source_id)
        if "{" in url:
            mismatches.append(f"{method} {path}: add a scenario that fills its path parameters")
            continue

        response = await client.request(method, url, headers=headers, **kwargs)
        cell = f"{method} {path} as {caller}"
        if response.status_code != expected:
            mismatches.append(f"{cell}: expected {expected}, got {response.status_code}")
            continue
        if expected >= 400:
            mismatches.extend(f"{cell}: {problem}" for problem in _problem_errors(response))
        if expected == 200 and path in ("/v1/requests", "/v1/requests/search"):
            listed = {item["id"] for item in response.json()["items"]}
            if caller == INTEGRATION and foreign in listed:
                mismatches.append(f"{cell}: lists a request of another client")
            if own not in listed or (caller != INTEGRATION and foreign not in listed):
                mismatches.append(f"{cell}: leaves out a request its caller may see")
        if expected == 401 and not response.headers.get("www-authenticate", "").startswith(
            "Bearer"
        ):
            mismatches.append(f"{cell}: 401 without a Bearer WWW-Authenticate challenge")
        if expected >= 400 and webhook_id is not None:
            after = await _webhook_snapshot(client, officer_headers, webhook_id)
            if after != before:
                mismatches.append(f"{cell}: a refused call changed the webhook endpoint")
        if expected >= 400 and client_id is not None and path.startswith(UID):
            if await _person_snapshot(client, admin_headers, client_id) != before:
                mismatches.append(f"{cell}: a refused call changed the person's account")
        elif expected >= 400 and client_id is not None:
            after = await _client_snapshot(client, admin_headers, client_id)
            if after != before:
                mismatches.append(f"{cell}: a refused call changed the client")
        if expected >= 400 and feed_path is not None:
            still = await client.get(feed_path)
            if still.status_code != 200:
                mismatches.append(f"{cell}: a refused call revoked the calendar feed")
        if expected >= 400 and source_id is not None:
            after = await _data_source_snapshot(client, admin_headers, source_id)
            if after != before:
                mismatches.append(f"{cell}: a refused call changed the data source")
        if expected >= 400 and request_id is not None:
            after = await _snapshot(client, officer_headers, request_id)
            if after != before:
                mismatches.append(f"{cell}: a refused call changed the request")
    assert not mismatches, "\n".join(mismatches)


async def test_the_forged_token_recipe_is_otherwise_valid(client: AsyncClient) -> None:
    """Guards the matrix: tokens built like the bad ones, minus the defect, are accepted."""
    response = await client.post(
        "/v1/clients",
        headers=_bearer(_sign(_admin_claims())),
        json={"name": "Recipe check", "role": "integration"},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic dGVzdC1hZG1pbjp0ZXN0LWFkbWluLXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm",  # admin, Basic
        "Bearer",
        "Bearer    ",
        "Token abc",
        "bearer " + "x" * 5000,
    ],
    ids=["basic-on-api", "bearer-empty", "bearer-blank", "other-scheme", "huge"],
)
async def test_other_authorization_headers_are_401(client: AsyncClient, authorization: str) -> None:
    response = await client.get("/v1/requests", headers={"Authorization": authorization})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


# ------------------------------------------------------------------------------ statuses


async def test_extend_only_once(client: AsyncClient, officer_headers: dict[str, str]) -> None:
    request_id = await request_in(client, officer_headers, officer_headers, IN_PROGRESS)
    assert (await _act(client, officer_headers, request_id, "extend")).status_code == 200
    body = assert_problem(await _act(client, officer_headers, request_id, "extend"), 409)
    assert body["title"] == "Already extended"


async def test_fulfil_answers_no_data_sources(
    client: AsyncClient, admin_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    request_id = await request_in(client, officer_headers, officer_headers, IN_PROGRESS)
    for headers in (officer_headers, admin_headers):
        body = assert_problem(await _act(client, headers, request_id, "fulfil"), 409)
        assert body["title"] == "No data sources configured"


# ------------------------------------------------------------------------------ integrations


async def test_integration_reads_and_cancels_its_own_request(
    client: AsyncClient, integration_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    own = await request_in(client, integration_headers, officer_headers, AWAITING)
    foreign = await request_in(client, officer_headers, officer_headers, AWAITING)

    response = await client.get(f"/v1/requests/{own}", headers=integration_headers)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == own
    response = await client.get(f"/v1/requests/{own}/events", headers=integration_headers)
    assert response.status_code == 200, response.text
    assert [event["type"] for event in response.json()["items"]] == ["request.received"]

    listed = await client.get("/v1/requests", headers=integration_headers)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [own]
    officer_list = await client.get("/v1/requests", headers=officer_headers)
    assert {item["id"] for item in officer_list.json()["items"]} == {own, foreign}

    response = await _act(client, integration_headers, own, "cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == CANCELLED


@pytest.mark.parametrize("action", OFFICER_ONLY_ACTIONS)
async def test_integration_cannot_act_even_on_its_own_request(
    client: AsyncClient,
    integration_headers: dict[str, str],
    officer_headers: dict[str, str],
    action: str,
) -> None:
    status = SCENARIOS[f"{RID}/{action}"][0]
    own = await request_in(client, integration_headers, officer_headers, status)
    before = await _snapshot(client, officer_headers, own)
    assert_problem(await _act(client, integration_headers, own, action), 403)
    assert await _snapshot(client, officer_headers, own) == before


async def test_integration_cannot_tell_foreign_requests_from_missing_ones(
    client: AsyncClient, integration_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    foreign = await request_in(client, officer_headers, officer_headers, AWAITING)
    missing = str(uuid.uuid4())
    for suffix, method in (("", "GET"), ("/events", "GET"), ("/cancel", "POST")):
        answers = []
        for request_id in (foreign, missing):
            response = await client.request(
                method, f"/v1/requests/{request_id}{suffix}", headers=integration_headers
            )
            answers.append((response.status_code, response.json()))
        assert answers[0] == answers[1], suffix
        assert answers[0][0] == 404
    # Officer-only actions: 403 before anything is looked up, so also the same for both.
    for request_id in (foreign, missing):
        assert_problem(await _act(client, integration_headers, request_id, "pause"), 403)


# ------------------------------------------------------------------------------ scopes


async def _token(client: AsyncClient, client_id: str, secret: str, **form: str) -> Any:
    return await client.post(
        "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            **form,
        },
    )


async def test_narrower_scope_is_honoured(
    client: AsyncClient, admin_headers: dict[str, str], officer_headers: dict[str, str]
) -> None:
    officer_id, officer_secret = await new_client(client, admin_headers, "officer")
    response = await _token(client, officer_id, officer_secret, scope="requests:read")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "requests:read"
    narrow = _bearer(response.json()["access_token"])

    assert (await client.get("/v1/requests", headers=narrow)).status_code == 200
    assert_problem(await client.post("/v1/requests", headers=narrow, json=request_body()), 403)
    for action in ACTION_BODIES:
        status = SCENARIOS[f"{RID}/{action}"][0]
        request_id = await request_in(client, officer_headers, officer_headers, status)
        before = await _snapshot(client, officer_headers, request_id)
        # Officer-only actions need requests:manage; cancel needs requests:submit.
        assert_problem(await _act(client, narrow, request_id, action), 403)
        assert await _snapshot(client, officer_headers, request_id) == before
    # Without requests:read_all the narrow token reads like an integration: only its own.
    request_id = await request_in(client, officer_headers, officer_headers, AWAITING)
    assert_problem(await client.get(f"/v1/requests/{request_id}", headers=narrow), 404)

    response = await client.post(
        "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": ADMIN_ID,
            "client_secret": ADMIN_SECRET,
            "scope": "requests:read requests:read_all",
        },
    )
    assert response.status_code == 200, response.text
    narrow_admin = _bearer(response.json()["access_token"])
    response = await client.post(
        "/v1/clients", headers=narrow_admin, json={"name": "x", "role": "integration"}
    )
    assert_problem(response, 403)


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        ("officer", "clients:manage"),
        ("officer", "requests:read requests:bogus"),
        ("integration", "requests:manage"),
        ("integration", "requests:read_all"),
        ("integration", "admin"),
    ],
)
async def test_scope_beyond_the_role_is_invalid_scope(
    client: AsyncClient, admin_headers: dict[str, str], role: str, scope: str
) -> None:
    client_id, secret = await new_client(client, admin_headers, role)
    body = assert_problem(await _token(client, client_id, secret, scope=scope), 400)
    assert body["error"] == "invalid_scope"
    assert "access_token" not in body


# ------------------------------------------------------------------------------ token endpoint


@pytest.mark.parametrize("how", ["form", "basic"])
async def test_token_with_form_or_basic_credentials(
    client: AsyncClient, integration_credentials: tuple[str, str], how: str
) -> None:
    client_id, secret = integration_credentials
    if how == "form":
        response = await _token(client, client_id, secret)
    else:
        response = await client.post(
            "/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=BasicAuth(client_id, secret),
        )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert body["scope"] == "requests:read requests:submit suppressions:check webhooks:manage"
    listed = await client.get("/v1/requests", headers=_bearer(body["access_token"]))
    assert listed.status_code == 200, listed.text


@pytest.mark.parametrize("how", ["form", "basic"])
async def test_wrong_secret_and_unknown_client_are_the_same_401(
    client: AsyncClient, integration_credentials: tuple[str, str], how: str
) -> None:
    client_id, secret = integration_credentials
    answers = []
    for candidate_id, candidate_secret in ((client_id, secret + "x"), ("nobody", secret)):
        if how == "form":
            response = await _token(client, candidate_id, candidate_secret)
        else:
            response = await client.post(
                "/v1/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=BasicAuth(candidate_id, candidate_secret),
            )
        body = assert_problem(response, 401)
        assert body["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")
        answers.append(body)
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    "authorization", ["Basic !!!notbase64", "Basic " + _b64url(b"no-colon-here")]
)
async def test_malformed_basic_credentials_are_invalid_client(
    client: AsyncClient, authorization: str
) -> None:
    response = await client.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": authorization},
    )
    assert assert_problem(response, 401)["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("grant_type", "error"),
    [
        ("password", "unsupported_grant_type"),
        ("authorization_code", "unsupported_grant_type"),
        ("CLIENT_CREDENTIALS", "unsupported_grant_type"),
        (None, "invalid_request"),
    ],
)
async def test_grant_type_must_be_client_credentials(
    client: AsyncClient, grant_type: str | None, error: str
) -> None:
    form = {"client_id": ADMIN_ID, "client_secret": ADMIN_SECRET}
    if grant_type is not None:
        form["grant_type"] = grant_type
    response = await client.post("/v1/oauth/token", data=form)
    assert assert_problem(response, 400)["error"] == error
