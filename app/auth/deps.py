"""Who is calling: the bearer token, the scope checks, and the typed caller dependencies;
and the API client named in a path (load-or-404, admins only)."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.routing import APIRoute
from fastapi.security import OAuth2

from app.auth import client_admin
from app.auth.revocation import ActiveClients
from app.auth.scopes import SCOPE_DESCRIPTIONS, Principal, Scope
from app.auth.tokens import verify_access_token
from app.core.config import Settings
from app.core.deps import SessionDep
from app.core.errors import Forbidden, Unauthorized
from app.core.json_body import is_json_media_type, parse_json_body
from app.models import Client


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


def authenticate(settings: Settings, token: str | None) -> Principal:
    """The caller behind a bearer token; 401 without a valid one."""
    if token is None:
        raise Unauthorized("A bearer access token is required; get one at /v1/oauth/token.")
    principal = verify_access_token(token, secret_keys=settings.reading_keys)
    if principal is None:
        raise Unauthorized(
            "The access token is invalid or expired.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


async def authenticated(request: Request, token: str | None) -> Principal:
    """The caller, checked once per request: a valid token of a client still active (else 401)."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    principal = authenticate(request.app.state.settings, token)
    active_clients: ActiveClients = request.app.state.active_clients
    if not await active_clients.admits(principal):
        raise Unauthorized(
            "The access token has been revoked: its client was disabled or deleted, or "
            "its secret was rotated.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    request.state.principal = principal
    return principal


def require(scope: Scope) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that admits only callers holding ``scope`` whose client is still active
    and whose token predates no revocation (disable, rotation, deletion) of that client."""

    # One dependency, not a chain: each level of FastAPI's dependency solving costs on
    # every request, and every route runs this.
    async def check(
        request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
    ) -> Principal:
        principal = await authenticated(request, token)
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


async def get_active_clients(request: Request) -> ActiveClients:
    """This process's view of the active clients (told when a route changes one)."""
    active_clients: ActiveClients = request.app.state.active_clients
    return active_clients


ActiveClientsDep = Annotated[ActiveClients, Depends(get_active_clients)]
ClientId = Annotated[str, Path(description="The client's `client_id`.")]


async def load_client(_admin: Admin, session: SessionDep, client_id: ClientId) -> Client:
    """The client named in the path; 404 if there is none or it was deleted."""
    return await client_admin.get_client(session, client_id=client_id)


ClientDep = Annotated[Client, Depends(load_client)]


def _needs_token(dependant: Dependant) -> bool:
    return dependant.call is oauth2_scheme or any(
        _needs_token(sub) for sub in dependant.dependencies
    )


class TokenFirstRoute(APIRoute):
    """A route that checks the bearer token first, then judges a JSON body, then runs.

    FastAPI parses the JSON body before it runs dependencies, so a caller without a token
    would learn how its body was judged (400, 422) before being told it is not authenticated.
    A JSON body is then parsed once, refusing NUL characters and repeated keys
    (``app.core.json_body``). Every capability's router uses this class.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        needs_token = _needs_token(self.dependant)
        takes_body = self.body_field is not None
        if not (needs_token or takes_body):
            return handler

        async def checked(request: Request) -> Response:
            if needs_token:
                await authenticated(request, await oauth2_scheme(request))
            if takes_body and is_json_media_type(request.headers.get("content-type")):
                body = await request.body()
                if body:
                    # Starlette's cache of the parsed body: FastAPI takes it from there.
                    request._json = parse_json_body(body)
            return await handler(request)

        return checked
