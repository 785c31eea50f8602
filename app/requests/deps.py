"""Load-or-404 dependencies for a request in the path, with the visibility check inside."""

import uuid
from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import Reader
from app.auth.scopes import Principal
from app.core.deps import SessionDep
from app.core.errors import NotFound
from app.models import DsrRequest

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
