"""Load-or-404 dependencies for a data source in the path (admins only)."""

import uuid
from typing import Annotated

from fastapi import Depends, Path

from app.auth.deps import SourceManager
from app.core.deps import SessionDep
from app.data_sources import service
from app.models import DataSource

SourceId = Annotated[uuid.UUID, Path(description="The data source's id.")]


async def load_source(
    session: SessionDep, _admin: SourceManager, source_id: SourceId
) -> DataSource:
    """The live source (admins only; 403 before anything is looked up)."""
    return await service.get_source(session, source_id=source_id)


async def lock_source(
    session: SessionDep, _admin: SourceManager, source_id: SourceId
) -> DataSource:
    """As ``load_source``, locking the row so a concurrent change waits."""
    return await service.get_source(session, source_id=source_id, for_update=True)


SourceDep = Annotated[DataSource, Depends(load_source)]

LockedSource = Annotated[DataSource, Depends(lock_source)]
