"""Liveness and readiness probes (no authentication, no data), and the browsers' favicon."""

from fastapi import APIRouter, Response
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


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """No icon: browsers ask for one on every page; an empty answer keeps their logs clean."""
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})
