"""Data sources (admin): the systems fulfilment searches, exports from, erases and rectifies."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status
from fastapi.responses import Response

from app.auth.deps import SourceManager, TokenFirstRoute
from app.core.deps import NowDep, SessionDep, SettingsDep
from app.core.errors import AUTH_ERRORS, CONFLICT, NOT_FOUND, VALIDATION
from app.core.pagination import Page
from app.core.strict_query import StrictQuery
from app.data_sources import service
from app.data_sources.deps import LockedSource, SourceDep
from app.data_sources.schemas import (
    DATA_SOURCE_CREATE_EXAMPLES,
    DataSourceCreate,
    DataSourcePublic,
    DataSourceTestResult,
)

router = APIRouter(prefix="/v1/data-sources", tags=["Data sources"], route_class=TokenFirstRoute)

SOURCE_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {**NOT_FOUND[404], "description": "No such data source, or it was deleted."}
}
REGISTRATION_REFUSED: dict[int | str, dict[str, Any]] = {
    422: {
        **VALIDATION[422],
        "description": "Invalid body; a dataset map with problems (each listed in `errors`); "
        "a database URL or base URL that cannot be used; an assignee that is not an active "
        'client; or the connection test failed (`title`: "Connection test failed", '
        "`detail`: why, never the credentials).",
    }
}
NAME_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {**CONFLICT[409], "description": "A data source with this name already exists."}
}
BAD_CURSOR: dict[int | str, dict[str, Any]] = {400: {"description": "Invalid cursor."}}
SOURCE_ERRORS = {**AUTH_ERRORS, **SOURCE_NOT_FOUND, **VALIDATION}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DataSourcePublic,
    summary="Register a data source",
    responses={**AUTH_ERRORS, **REGISTRATION_REFUSED, **NAME_TAKEN},
)
async def create_data_source(
    _admin: SourceManager,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[DataSourceCreate, Body(openapi_examples=DATA_SOURCE_CREATE_EXAMPLES)],
) -> DataSourcePublic:
    """Tell the service about a system that holds personal data, so that fulfilment
    searches it for access and portability and changes it for erasure, rectification and
    restriction.

    * `sql`: a database reached with a SQLAlchemy URL, described by a **dataset map**
      (YAML or JSON): which tables hold people, how to find a person (email, phone,
      customer id), which columns belong to which data category, and what erasure does to
      each category (`delete`, `null`, `mask`, or `retain` with the legal reason, e.g.
      "financial records, 6 years, HMRC"). Every problem in the map is listed in `errors`.
    * `http`: a system implementing the service's REST contract for data sources (access,
      erase, rectify, restrict by identity), optionally with a bearer `auth_token`.
    * `task`: a system the service cannot reach. For each request the assignee (an API
      client) receives a `task.created` webhook event, does the work and posts the result
      back; the request completes when every task is done.

    `sql` and `http` sources are **tested on registration**: a source that cannot be reached
    is refused (422 "Connection test failed", with the reason). Credentials are stored
    encrypted and never shown again: the answer shows the URL without its password.
    """
    source = await service.register_source(session, settings=settings, spec=body, now=now)
    return service.source_public(source)


@router.get(
    "",
    response_model=Page[DataSourcePublic],
    summary="List data sources",
    responses={**AUTH_ERRORS, **VALIDATION, **BAD_CURSOR},
)
async def list_data_sources(
    _admin: SourceManager,
    _strict: StrictQuery,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[DataSourcePublic]:
    """The registered data sources, newest first, with their last connection test.

    Deleted sources are not listed. Pass `next_cursor` back as `cursor` for the next page.
    """
    rows, next_cursor = await service.list_sources(session, limit=limit, cursor=cursor)
    return Page[DataSourcePublic](
        items=[service.source_public(row) for row in rows], next_cursor=next_cursor
    )


@router.get(
    "/{source_id:uuid}",
    response_model=DataSourcePublic,
    summary="Get one data source",
    responses=SOURCE_ERRORS,
)
async def get_data_source(source: SourceDep) -> DataSourcePublic:
    """The source's kind, safe configuration and last connection test; never credentials."""
    return service.source_public(source)


@router.delete(
    "/{source_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a data source",
    responses=SOURCE_ERRORS,
)
async def delete_data_source(source: LockedSource, session: SessionDep, now: NowDep) -> Response:
    """Stop using this source for new fulfilment, for good.

    Its stored credentials are destroyed and it disappears from every answer (404); what
    fulfilment already recorded about it is kept. Its name can be registered again.
    """
    await service.delete_source(session, source=source, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{source_id:uuid}/test",
    response_model=DataSourceTestResult,
    summary="Test a data source's connection",
    responses=SOURCE_ERRORS,
)
async def test_data_source(
    source: SourceDep, session: SessionDep, settings: SettingsDep, now: NowDep
) -> DataSourceTestResult:
    """Check that the source still answers, e.g. after a password change or an outage.

    Always 200: `ok` says whether the test passed and `detail` why not (never the
    credentials). For `task` sources the test checks that the assignee client still exists
    and is active. The outcome is recorded on the source (`last_tested_at`, `last_test_ok`).
    """
    problem = await service.test_source(session, settings=settings, source=source, now=now)
    return DataSourceTestResult(ok=problem is None, detail=problem, tested_at=now)
