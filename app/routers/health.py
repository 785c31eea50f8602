"""Liveness and readiness probes (no authentication, no data)."""

from fastapi import APIRouter
from sqlalchemy import text

from app.deps import SessionDep

router = APIRouter(tags=["Health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"description": "Database down."}})
async def readyz(session: SessionDep) -> dict[str, str]:
    """The process can reach its database."""
    await session.execute(text("SELECT 1"))
    return {"status": "ready"}
