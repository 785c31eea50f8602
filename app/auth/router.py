"""The OAuth2 client-credentials token endpoint, and API client management (admin)."""

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response, status

from app.auth import client_admin, clients
from app.auth.deps import ActiveClientsDep, Admin, ClientDep, TokenFirstRoute
from app.auth.schemas import (
    ClientCreate,
    ClientCreated,
    ClientPublic,
    ClientSecretRotated,
    TokenResponse,
)
from app.auth.scopes import ROLE_SCOPES, Role
from app.auth.tokens import issue_access_token, revocation_mark
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import AUTH_ERRORS, CONFLICT, NOT_FOUND, AppError, BadRequest, problem_response
from app.core.pagination import Page
from app.core.time import utcnow

router = APIRouter(prefix="/v1/oauth", tags=["Auth"], route_class=TokenFirstRoute)
clients_router = APIRouter(prefix="/v1/clients", tags=["Clients"], route_class=TokenFirstRoute)

CLIENT_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    404: {**NOT_FOUND[404], "description": "No such client, or it was deleted."},
}
KEEP_AN_ADMIN: dict[int | str, dict[str, Any]] = {
    409: {
        **CONFLICT[409],
        "description": "It is the last active admin, or the client you are calling with.",
    }
}


class InvalidClient(AppError):
    status = 401
    title = "Invalid client"
    slug = "invalid-client"


def _oauth_error(error: type[AppError], code: str, detail: str) -> AppError:
    headers = {"WWW-Authenticate": 'Basic realm="dsr"'} if error.status == 401 else None
    return error(detail, headers=headers, extra={"error": code})


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        client_id, sep, client_secret = (
            base64.b64decode(encoded, validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _oauth_error(
            InvalidClient, "invalid_client", "The Basic credentials are malformed."
        ) from None
    if not sep:
        raise _oauth_error(InvalidClient, "invalid_client", "The Basic credentials are malformed.")
    return client_id, client_secret


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="Get an access token (client credentials)",
    responses={
        400: {"description": "Unsupported grant type, missing field or invalid scope."},
        401: {"description": "Unknown client or wrong secret."},
    },
)
async def issue_token(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    grant_type: Annotated[str | None, Form(max_length=64, examples=["client_credentials"])] = None,
    client_id: Annotated[str | None, Form(max_length=200)] = None,
    client_secret: Annotated[str | None, Form(max_length=500)] = None,
    scope: Annotated[str | None, Form(max_length=1000)] = None,
) -> TokenResponse:
    """Exchange your client id and secret for a bearer token (OAuth2 client credentials).

    Send `grant_type=client_credentials` as a form, with the credentials either in the form
    (`client_id`, `client_secret`) or as HTTP Basic. Ask for fewer `scope`s than your role
    holds if you want a narrower token. Use the token as `Authorization: Bearer <token>`;
    in these docs, the **Authorize** button does this for you.
    """
    if grant_type is None:
        raise _oauth_error(BadRequest, "invalid_request", "grant_type is required.")
    if grant_type != "client_credentials":
        raise _oauth_error(
            BadRequest, "unsupported_grant_type", "Only grant_type=client_credentials is supported."
        )
    basic = _basic_credentials(request)
    if basic is not None:
        client_id, client_secret = basic
    if not client_id or not client_secret or "\x00" in client_id + client_secret:
        raise _oauth_error(
            InvalidClient,
            "invalid_client",
            "Client credentials are required (form fields or HTTP Basic).",
        )
    client = await clients.authenticate(
        session, settings=settings, client_id=client_id, client_secret=client_secret
    )
    if client is None:
        raise _oauth_error(InvalidClient, "invalid_client", "Unknown client or wrong secret.")
    role = Role(client.role)
    granted: frozenset[str] = frozenset(ROLE_SCOPES[role])
    if scope and scope.strip():
        requested = frozenset(scope.split())
        if not requested <= granted:
            raise _oauth_error(
                BadRequest,
                "invalid_scope",
                "The requested scope exceeds what this client's role allows.",
            )
        granted = requested
    token = issue_access_token(
        client_id=client.client_id,
        role=role,
        scopes=granted,
        secret_key=settings.secret_key,
        ttl_seconds=settings.access_token_ttl,
        revocation_mark=revocation_mark(client.tokens_revoked_at),
    )
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(
        access_token=token, expires_in=settings.access_token_ttl, scope=" ".join(sorted(granted))
    )


@clients_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ClientCreated,
    summary="Create an API client",
    responses={**AUTH_ERRORS, 422: {"description": "Invalid name or role."}},
)
async def create_client(
    body: ClientCreate, _admin: Admin, session: SessionDep, settings: SettingsDep
) -> ClientCreated:
    """Create a client for a CRM integration, a privacy officer or another admin.

    **The secret is shown only in this response**: we keep just a keyed hash (and an
    encrypted copy used to check identity assertions the client signs). Roles:
    `integration` submits requests and sees only its own; `officer` sees and acts on every
    request; `admin` also manages clients.
    """
    client, secret = await clients.create_client(
        session, settings=settings, name=body.name, role=Role(body.role), now=utcnow()
    )
    return ClientCreated(
        client_id=client.client_id, client_secret=secret, name=client.name, role=Role(client.role)
    )


@clients_router.get(
    "",
    response_model=Page[ClientPublic],
    summary="List API clients",
    responses={**AUTH_ERRORS, 400: problem_response("Invalid cursor.")},
)
async def list_clients(
    _admin: Admin,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[ClientPublic]:
    """Every client, newest first, with its role and whether it is active; never a secret.

    Deleted clients are not listed. Pass `next_cursor` back as `cursor` for the next page.
    """
    rows, next_cursor = await client_admin.list_clients(session, limit=limit, cursor=cursor)
    return Page[ClientPublic](
        items=[client_admin.client_public(row) for row in rows], next_cursor=next_cursor
    )


@clients_router.post(
    "/{client_id}/disable",
    response_model=ClientPublic,
    summary="Disable an API client",
    responses={**CLIENT_ERRORS, **KEEP_AN_ADMIN},
)
async def disable_client(
    client: ClientDep, admin: Admin, session: SessionDep, active_clients: ActiveClientsDep
) -> ClientPublic:
    """Stop a client at once, e.g. when its secret may have leaked.

    Its secret and **every token it holds** are refused: in this process immediately, in
    every other API process within `DSR_CLIENT_REFRESH_INTERVAL` (5 s by default). Its
    identity assertions are refused, and its webhook endpoints are disabled with it (events
    meanwhile are not sent to them). Its requests stay as they are. Enable it again with
    `/enable`; tokens issued before the disable stay refused, so it gets a new one.

    You cannot disable the client you are calling with, nor the last active admin (409).
    """
    await client_admin.disable_client(
        session, client=client, caller_client_id=admin.client_id, now=utcnow()
    )
    active_clients.invalidate()
    return client_admin.client_public(client)


@clients_router.post(
    "/{client_id}/enable",
    response_model=ClientPublic,
    summary="Enable a disabled API client",
    responses=CLIENT_ERRORS,
)
async def enable_client(
    client: ClientDep, session: SessionDep, active_clients: ActiveClientsDep
) -> ClientPublic:
    """Accept a disabled client's secret again, and re-enable the webhook endpoints that were
    disabled with it. Tokens issued before it was disabled stay refused.

    If the secret may have leaked, rotate it (`/rotate-secret`) before enabling the client.
    """
    await client_admin.enable_client(session, client=client)
    active_clients.invalidate()
    return client_admin.client_public(client)


@clients_router.post(
    "/{client_id}/rotate-secret",
    response_model=ClientSecretRotated,
    summary="Rotate an API client's secret",
    responses=CLIENT_ERRORS,
)
async def rotate_client_secret(
    client: ClientDep,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    active_clients: ActiveClientsDep,
) -> ClientSecretRotated:
    """Replace a client's secret. **The new secret is shown only in this response.**

    From now on the old secret is refused, as are tokens issued before the rotation (in every
    API process within `DSR_CLIENT_REFRESH_INTERVAL`) and identity assertions signed with the
    old secret. Rotating the client you are calling with also ends your current token. A
    disabled client stays disabled.
    """
    now = utcnow()
    secret = await client_admin.rotate_secret(session, settings=settings, client=client, now=now)
    active_clients.invalidate()
    response.headers["Cache-Control"] = "no-store"
    return ClientSecretRotated(
        client_id=client.client_id,
        client_secret=secret,
        name=client.name,
        role=Role(client.role),
        secret_rotated_at=now,
    )


@clients_router.delete(
    "/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an API client",
    responses={**CLIENT_ERRORS, **KEEP_AN_ADMIN},
)
async def delete_client(
    client: ClientDep, admin: Admin, session: SessionDep, active_clients: ActiveClientsDep
) -> Response:
    """Revoke a client for good: its secret is destroyed, its tokens refused, its webhook
    endpoints deleted (deliveries not yet made are cancelled).

    Requests it submitted are kept and stay attributed to its `client_id` in the audit trail;
    that `client_id` is never given to another client. You cannot delete the client you are
    calling with, nor the last active admin (409).
    """
    await client_admin.delete_client(
        session, client=client, caller_client_id=admin.client_id, now=utcnow()
    )
    active_clients.invalidate()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
