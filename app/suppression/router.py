"""The suppression list: CRMs check contacts before importing them; officers curate it."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import Response

from app.auth.deps import TokenFirstRoute, require
from app.auth.scopes import Principal, Scope
from app.core.deps import NowDep, SessionDep, SettingsDep
from app.core.errors import AUTH_ERRORS, NOT_FOUND, VALIDATION
from app.core.pagination import Page
from app.core.schemas import EMAIL_FORMAT, PHONE_FORMAT
from app.core.strict_query import StrictQuery
from app.suppression import service
from app.suppression.schemas import (
    SuppressionCheck,
    SuppressionCheckResult,
    SuppressionCreate,
    SuppressionPublic,
    SuppressionsAdded,
)

router = APIRouter(prefix="/v1/suppressions", tags=["Suppression"], route_class=TokenFirstRoute)

SuppressionChecker = Annotated[Principal, Depends(require(Scope.SUPPRESSIONS_CHECK))]
SuppressionManager = Annotated[Principal, Depends(require(Scope.SUPPRESSIONS_MANAGE))]
SuppressionId = Annotated[uuid.UUID, Path(description="The suppression entry's id.")]

ENTRY_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {**NOT_FOUND[404], "description": "No suppression entry with this id."}
}
INVALID_IDENTITY: dict[int | str, dict[str, Any]] = {
    422: {
        **VALIDATION[422],
        "description": "Invalid body, or an email address or phone number that is not one "
        "(the value is never repeated back).",
    }
}
BAD_CURSOR: dict[int | str, dict[str, Any]] = {400: {"description": "Invalid cursor."}}


@router.post(
    "/check",
    response_model=SuppressionCheckResult,
    summary="Check whether a person is suppressed",
    responses={**AUTH_ERRORS, **INVALID_IDENTITY},
)
async def check_suppression(
    body: SuppressionCheck, _caller: SuppressionChecker, session: SessionDep, settings: SettingsDep
) -> SuppressionCheckResult:
    """Ask before importing or contacting someone: may we reach them, and on which channels?

    Send `email`, `phone` or both. The answer is `suppressed: true` with the channels if any
    of them is on the list (because they objected to direct marketing, had their data
    erased, or restricted its processing). Do not contact them on those channels.

    Matching is forgiving on purpose: email addresses are compared case-insensitively and
    phone numbers in E.164 form, so `Jane.Doe@Example.COM` matches `jane.doe@example.com`
    and `01632 960001` matches `+441632960001` (national numbers are read as UK numbers).
    """
    suppressed, channels = await service.check(
        session, settings=settings, email=body.email, phone=body.phone
    )
    return SuppressionCheckResult(suppressed=suppressed, channels=channels)  # type: ignore[arg-type]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SuppressionsAdded,
    summary="Suppress a person manually",
    responses={**AUTH_ERRORS, **INVALID_IDENTITY},
)
async def add_suppression(
    body: SuppressionCreate,
    principal: SuppressionManager,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> SuppressionsAdded:
    """Put someone on the suppression list outside a request (reason `manual`).

    Use it when a person asks not to be contacted by phone or letter, for instance. Each
    identity given gets its own entry; if it is already on the list, the channels are added
    to its entry. Only a keyed hash of the address or number is stored, so neither this
    answer nor the list can ever show who it is: keep your own note of it if you need one.
    """
    entries = await service.suppress(
        session,
        settings=settings,
        email=body.email,
        phone=body.phone,
        channels=body.channels,
        reason="manual",
        now=now,
    )
    return SuppressionsAdded(items=[service.suppression_public(entry) for entry in entries])


@router.get(
    "",
    response_model=Page[SuppressionPublic],
    summary="List the suppression list",
    responses={**AUTH_ERRORS, **INVALID_IDENTITY, **BAD_CURSOR},
)
async def list_suppressions(
    _officer: SuppressionManager,
    _strict: StrictQuery,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[
        str | None,
        Query(
            max_length=320, description="Only this address's entry.", json_schema_extra=EMAIL_FORMAT
        ),
    ] = None,
    phone: Annotated[
        str | None,
        Query(
            max_length=40, description="Only this number's entry.", json_schema_extra=PHONE_FORMAT
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[SuppressionPublic]:
    """Entries newest first: the kind of identity, channels, reason, originating request and
    dates. The identities themselves are not stored, so they cannot be listed.

    To find one person's entry, pass their `email` or `phone`: it is hashed the same way and
    matched. Pass `next_cursor` back as `cursor` for the next page.
    """
    rows, next_cursor = await service.list_entries(
        session, settings=settings, email=email, phone=phone, limit=limit, cursor=cursor
    )
    return Page[SuppressionPublic](
        items=[service.suppression_public(row) for row in rows], next_cursor=next_cursor
    )


@router.delete(
    "/{suppression_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a suppression entry",
    responses={**AUTH_ERRORS, **ENTRY_NOT_FOUND, **VALIDATION},
)
async def delete_suppression(
    suppression_id: SuppressionId, principal: SuppressionManager, session: SessionDep, now: NowDep
) -> Response:
    """Take an entry off the list: the person may be contacted again on its channels.

    Only do this with a reason you can justify (an entry added by mistake, or the person
    asked to hear from you again). The removal is logged, and recorded in the audit trail
    of the request that created the entry, if any.
    """
    await service.remove(session, entry_id=suppression_id, actor=principal.client_id, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
