"""Liveness and readiness probes (no authentication, no data)."""

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.auth.deps import TokenFirstRoute
from app.core.deps import SessionDep
from app.core.errors import ServiceUnavailable

router = APIRouter(tags=["Health"], route_class=TokenFirstRoute)


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up and answering HTTP (for container liveness probes)."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"description": "Database down."}})
async def readyz(session: SessionDep) -> dict[str, str]:
    """The process can reach its database and is ready to take traffic."""
    try:
        await session.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        raise ServiceUnavailable(
            "The database cannot be reached.", headers={"Retry-After": "1"}
        ) from None
    return {"status": "ready"}
