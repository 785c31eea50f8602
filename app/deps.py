"""Typed dependencies: session, caller, scope checks and load-or-404 resources."""

import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import get_session
from app.errors import Forbidden, NotFound, Unauthorized
from app.models import DsrRequest
from app.security import SCOPE_DESCRIPTIONS, Principal, Scope, verify_access_token


class OAuth2ClientCredentials(OAuth2):
    """Bearer tokens from the client-credentials flow; drives Swagger's Authorize button."""

    def __init__(self, token_url: str) -> None:
        flows = OAuthFlows(
            clientCredentials=OAuthFlowClientCredentials(
                tokenUrl=token_url,
                scopes={scope.value: text for scope, text in SCOPE_DESCRIPTIONS.items()},
            )
        )
        super().__init__(flows=flows, scheme_name="OAuth2", auto_error=False)

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


oauth2_scheme = OAuth2ClientCredentials(token_url="/v1/oauth/token")

SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_settings_from_app(request: Request) -> Settings:
    # async: a plain def would cost a thread-pool hop on every request.
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]


async def get_now(request: Request) -> datetime:
    """The current time from the app's clock (tests replace ``app.state.clock``)."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


NowDep = Annotated[datetime, Depends(get_now)]


def authenticate(settings: Settings, token: str | None) -> Principal:
    """The caller behind a bearer token; 401 without a valid one."""
    if token is None:
        raise Unauthorized("A bearer access token is required; get one at /v1/oauth/token.")
    principal = verify_access_token(token, secret_key=settings.secret_key)
    if principal is None:
        raise Unauthorized(
            "The access token is invalid or expired.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


def require(scope: Scope) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that admits only callers holding ``scope``."""

    # One dependency, not a chain: each level of FastAPI's dependency solving costs on
    # every request, and every route runs this.
    async def check(
        request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
    ) -> Principal:
        principal = authenticate(request.app.state.settings, token)
        if scope not in principal.scopes:
            raise Forbidden(f"This action needs the `{scope}` scope.")
        return principal

    return check


Reader = Annotated[Principal, Depends(require(Scope.REQUESTS_READ))]
Submitter = Annotated[Principal, Depends(require(Scope.REQUESTS_SUBMIT))]
Officer = Annotated[Principal, Depends(require(Scope.REQUESTS_MANAGE))]
Admin = Annotated[Principal, Depends(require(Scope.CLIENTS_MANAGE))]
SourceManager = Annotated[Principal, Depends(require(Scope.SOURCES_MANAGE))]
WebhookManager = Annotated[Principal, Depends(require(Scope.WEBHOOKS_MANAGE))]

RequestId = Annotated[uuid.UUID, Path(description="The request's id.")]


async def visible_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, *, for_update: bool = False
) -> DsrRequest:
    """The request, if this caller may see it; integrations only see their own (else 404).

    ``for_update`` locks the row (PostgreSQL) so concurrent actions on one request serialise.
    """
    dsr = await session.get(DsrRequest, request_id, with_for_update=for_update)
    if dsr is None or not (principal.sees_all_requests or dsr.submitted_by == principal.client_id):
        raise NotFound("No request with this id is visible to you.")
    return dsr


async def load_visible_request(
    session: SessionDep, principal: Reader, request_id: RequestId
) -> DsrRequest:
    return await visible_request(session, principal, request_id)


async def lock_visible_request(
    session: SessionDep, principal: Reader, request_id: RequestId
) -> DsrRequest:
    return await visible_request(session, principal, request_id, for_update=True)


RequestDep = Annotated[DsrRequest, Depends(load_visible_request)]
LockedRequest = Annotated[DsrRequest, Depends(lock_visible_request)]
