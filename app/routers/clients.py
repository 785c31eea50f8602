"""API client management (admin)."""

from fastapi import APIRouter, status

from app.deps import Admin, SessionDep, SettingsDep
from app.models import utcnow
from app.routers.common import AUTH_ERRORS
from app.schemas import ClientCreate, ClientCreated
from app.security import Role
from app.services import clients

router = APIRouter(prefix="/v1/clients", tags=["Clients"])


@router.post(
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
