"""Who owns a case: assign a request to an officer or admin (an API client, or a person's
console account), or unassign it."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.accounts import service as accounts
from app.auth.scopes import Role
from app.core.config import Settings
from app.core.errors import InvalidTransition, UnprocessableEntity
from app.models import Client, DsrRequest
from app.requests import lifecycle
from app.requests.duplicates import OPEN_STATUSES

ASSIGNABLE_ROLES = (Role.OFFICER.value, Role.ADMIN.value)


def _not_assignable() -> UnprocessableEntity:
    # The submitted value is not repeated: it is whatever the caller typed.
    return UnprocessableEntity(
        "assignee must be the client_id of an active officer or admin client, the id of an "
        "active officer or admin user, or null.",
        extra={
            "errors": [
                {
                    "loc": ["body", "assignee"],
                    "msg": "not an active officer or admin client or user",
                    "type": "value_error",
                }
            ]
        },
    )


async def ensure_assignable(session: AsyncSession, *, client_id: str) -> None:
    """422 unless ``client_id`` names an active, undeleted officer or admin client, or an
    active officer or admin person (``usr_...``)."""
    if accounts.is_user_id(client_id):
        person = await accounts.active_person(session, user_id=client_id)
        if person is None or person.role not in ASSIGNABLE_ROLES:
            raise _not_assignable()
        return
    client = await session.scalar(select(Client).where(col(Client.client_id) == client_id))
    if (
        client is None
        or not client.active
        or client.deleted_at is not None
        or client.role not in ASSIGNABLE_ROLES
    ):
        raise _not_assignable()


async def assign(
    session: AsyncSession,
    *,
    settings: Settings,
    dsr: DsrRequest,
    assignee: str | None,
    actor: str,
    now: datetime,
) -> DsrRequest:
    """Give the open request to ``assignee`` (None: nobody); audited as ``request.assigned``.

    Closed requests keep the owner they had (409). Assigning the current owner again changes
    nothing and writes nothing.
    """
    if dsr.status not in OPEN_STATUSES:
        raise InvalidTransition(
            f"Cannot assign a request whose status is {dsr.status}.",
            extra={"current_status": dsr.status, "allowed_from": sorted(OPEN_STATUSES)},
        )
    if assignee is not None:
        await ensure_assignable(session, client_id=assignee)
    if assignee == dsr.assignee:
        return dsr
    previous = dsr.assignee
    dsr.assignee = assignee
    # Internal bookkeeping, not a state change consumers act on: no webhook event.
    return lifecycle.record_change(
        session,
        dsr,
        settings=settings,
        now=now,
        actor=actor,
        event="request.assigned",
        data={"assignee": assignee, "previous": previous},
        announce=False,
    )
