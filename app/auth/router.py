"""The OAuth2 client-credentials token endpoint, and API client management (admin)."""

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status

from app.auth import clients
from app.auth.deps import Admin, TokenFirstRoute
from app.auth.schemas import ClientCreate, ClientCreated, TokenResponse
from app.auth.scopes import ROLE_SCOPES, Role
from app.auth.tokens import issue_access_token
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import AUTH_ERRORS, AppError, BadRequest
from app.core.time import utcnow

router = APIRouter(prefix="/v1/oauth", tags=["Auth"], route_class=TokenFirstRoute)
clients_router = APIRouter(prefix="/v1/clients", tags=["Clients"], route_class=TokenFirstRoute)


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
