"""``GET /metrics``: Prometheus text, behind its own bearer token (DSR_METRICS_TOKEN).

Mounted only when the token is set, so without it the path does not exist (404) and a
scraper learns nothing; not in the OpenAPI document (it is for the operators' Prometheus,
not for API clients)."""

from typing import Annotated

from fastapi import APIRouter, Header, Response

from app.core.deps import NowDep, SessionDep, SettingsDep
from app.core.errors import Unauthorized
from app.metrics.exposition import CONTENT_TYPE, render, token_matches
from app.metrics.figures import FiguresCollector, read_figures

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """The service's figures in the Prometheus text format (see docs/operations.md)."""
    token = settings.metrics_token
    # Checked before any database work: a wrong token costs the service nothing.
    if token is None or not token_matches(authorization, token.get_secret_value()):
        raise Unauthorized("A valid metrics token is required.")
    figures = await read_figures(session, settings=settings, now=now)
    return Response(render(FiguresCollector(figures)), media_type=CONTENT_TYPE)
