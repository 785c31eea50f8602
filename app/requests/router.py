"""Data subject requests: intake, the deadline board, the audit trail and officer actions."""

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Request, status
from fastapi.responses import JSONResponse, Response

from app.auth.deps import Officer, Reader, Submitter, TokenFirstRoute
from app.core.deps import IntakeDep, NowDep, SessionDep, SettingsDep
from app.core.errors import ACTION_ERRORS, AUTH_ERRORS, NOT_FOUND, VALIDATION
from app.core.pagination import Page
from app.core.schemas import TextDate
from app.core.strict_query import StrictQuery
from app.enums import RequestStatus, RequestType
from app.requests import intake, lifecycle, service
from app.requests.deps import LockedRequest, RequestDep
from app.requests.duplicates import subject_history
from app.requests.schemas import (
    ASSIGNEE_FILTER,
    DUE_SOON_FILTER,
    DUPLICATES_FILTER,
    REQUEST_CREATE_EXAMPLES,
    REQUEST_SEARCH_EXAMPLES,
    UNASSIGNED_FILTER,
    CancelBody,
    CompleteBody,
    EventPublic,
    ExtendBody,
    PauseBody,
    RejectBody,
    RequestCreate,
    RequestPublic,
    RequestSearch,
)

router = APIRouter(prefix="/v1/requests", tags=["Requests"], route_class=TokenFirstRoute)
actions = APIRouter(prefix="/v1/requests", tags=["Request actions"], route_class=TokenFirstRoute)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RequestPublic,
    summary="Log a new request",
    responses={
        **AUTH_ERRORS,
        **VALIDATION,
        409: {"description": "Idempotency-Key reused with a different body."},
    },
)
async def create_request(
    request: Request,
    principal: Submitter,
    shared: IntakeDep,
    payload: Annotated[RequestCreate, Body(openapi_examples=REQUEST_CREATE_EXAMPLES)],
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Retry-safe submission: the same key and body return the "
            "original response; the same key with another body is refused (409).",
        ),
    ] = None,
) -> Response:
    """Log a request from a data subject, received through any channel.

    The request is timed from the day it was received (`received_at`, which you may
    back-date for post and phone, but never set in the future). Unless your integration
    already authenticated the person and sends an `identity_assertion`, the request waits in
    `awaiting_verification` with no due date: the clock starts on the day identity is
    confirmed. `details` depend on `type` (see the examples). The subject is sent an
    acknowledgement (with the due date, or saying it follows verification) when the request
    holds their email address. If the same subject (by email, phone or customer id) already
    has an open request of this type, officers see the new one flagged
    `possible_duplicate_of`; it is logged and timed all the same.
    """
    fingerprint = None
    if idempotency_key is not None:
        fingerprint = intake.body_fingerprint(await request.body())
        async with shared.sessionmaker() as session:
            stored = await intake.find_idempotent_response(
                session, principal=principal, key=idempotency_key, fingerprint=fingerprint
            )
        if stored is not None:
            return JSONResponse(
                stored,
                status_code=201,
                headers={"Idempotent-Replayed": "true", "Location": f"/v1/requests/{stored['id']}"},
            )
    _dsr, public = await intake.create_request(
        shared.committer,
        shared.sessionmaker,
        settings=shared.settings,
        principal=principal,
        payload=payload,
        now=shared.now,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
    return Response(
        public.model_dump_json(),
        status_code=201,
        media_type="application/json",
        headers={"Location": f"/v1/requests/{public.id}"},
    )


@router.get(
    "",
    response_model=Page[RequestPublic],
    summary="List requests (the deadline board)",
    responses={**AUTH_ERRORS, **VALIDATION, 400: {"description": "Invalid cursor."}},
)
async def list_requests(
    principal: Reader,
    _strict: StrictQuery,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    status_: Annotated[RequestStatus | None, Query(alias="status")] = None,
    type_: Annotated[RequestType | None, Query(alias="type")] = None,
    overdue: Annotated[bool | None, Query(description="true: past due and running")] = None,
    due_soon: Annotated[bool | None, Query(description=DUE_SOON_FILTER)] = None,
    due_before: Annotated[
        TextDate | None, Query(description="Due strictly before this date")
    ] = None,
    subject_email: Annotated[str | None, Query(max_length=320)] = None,
    assignee: Annotated[
        str | None, Query(min_length=1, max_length=64, description=ASSIGNEE_FILTER)
    ] = None,
    unassigned: Annotated[bool | None, Query(description=UNASSIGNED_FILTER)] = None,
    duplicates: Annotated[bool | None, Query(description=DUPLICATES_FILTER)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[RequestPublic]:
    """Requests newest first, with their deadlines.

    Filter by `status`, `type`, `overdue=true` (running requests past their due date),
    `due_soon=true` (running requests due within `DSR_DUE_SOON_DAYS`, not yet overdue),
    `due_before=YYYY-MM-DD`, `subject_email`, `assignee=<client_id>` (`assignee=me` for your
    own cases), `unassigned=true` and `duplicates=true` (flagged as a possible duplicate at
    intake); any other parameter is refused (422), so a misspelt filter never lists
    everything. Pass `next_cursor` back as `cursor` for the next
    page. Integrations see only the requests they submitted. To search by
    `subject_email` without putting the address in a URL (and so in proxy logs), use
    `POST /v1/requests/search`.
    """
    rows, next_cursor = await service.search_requests(
        session,
        principal=principal,
        settings=settings,
        now=now,
        # Each value was validated as a query parameter already.
        search=RequestSearch.model_construct(
            status=status_,
            type=type_,
            overdue=overdue,
            due_soon=due_soon,
            due_before=due_before,
            subject_email=subject_email,
            assignee=assignee,
            unassigned=unassigned,
            duplicates=duplicates,
            limit=limit,
            cursor=cursor,
        ),
    )
    return Page[RequestPublic](
        items=[service.request_public(row, settings, now, viewer=principal) for row in rows],
        next_cursor=next_cursor,
    )


@router.post(
    "/search",
    response_model=Page[RequestPublic],
    summary="Search requests (filters in the body)",
    responses={**AUTH_ERRORS, **VALIDATION, 400: {"description": "Invalid cursor."}},
)
async def search_requests(
    principal: Reader,
    _strict: StrictQuery,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    search: Annotated[RequestSearch, Body(openapi_examples=REQUEST_SEARCH_EXAMPLES)],
) -> Page[RequestPublic]:
    """The same list as `GET /v1/requests`, with the filters in a JSON body.

    Prefer this when you search by `subject_email`: a query string is written to the access
    logs of proxies and load balancers on the way, and the address with it; a body is not.
    Pass `next_cursor` back as `cursor` in the next body for the next page. Integrations see
    only the requests they submitted.
    """
    rows, next_cursor = await service.search_requests(
        session, principal=principal, search=search, settings=settings, now=now
    )
    return Page[RequestPublic](
        items=[service.request_public(row, settings, now, viewer=principal) for row in rows],
        next_cursor=next_cursor,
    )


@router.get(
    "/{request_id:uuid}",
    response_model=RequestPublic,
    summary="Get one request",
    responses={**AUTH_ERRORS, **NOT_FOUND, **VALIDATION},
)
async def get_request(
    principal: Reader, dsr: RequestDep, session: SessionDep, settings: SettingsDep, now: NowDep
) -> RequestPublic:
    """The request with its status, identity verification, deadline and owner.

    `subject_history` counts the subject's other requests (matched by email, phone or
    customer id) received in the last 365 days, by type, so you can judge whether a request
    is manifestly unfounded or excessive; `possible_duplicate_of` names an open request of
    the same type the subject already had when this one was logged. Both concern other
    requests, so integrations see them as null.
    """
    if not principal.sees_all_requests:
        return service.request_public(dsr, settings, now, viewer=principal)
    history = await subject_history(session, settings=settings, dsr=dsr, now=now)
    return service.request_public(dsr, settings, now, history=history)


@router.get(
    "/{request_id:uuid}/events",
    response_model=Page[EventPublic],
    summary="Audit trail of a request",
    responses={**AUTH_ERRORS, **NOT_FOUND, **VALIDATION},
)
async def list_events(
    dsr: RequestDep,
    _strict: StrictQuery,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[EventPublic]:
    """Every change to the request, oldest first: who did what, when, and why."""
    rows, next_cursor = await service.list_events(session, dsr=dsr, limit=limit, cursor=cursor)
    return Page[EventPublic](
        items=[service.event_public(row) for row in rows], next_cursor=next_cursor
    )


# ---------------------------------------------------------------- actions


def _action_route(path: str, summary: str):  # type: ignore[no-untyped-def]
    return actions.post(
        f"/{{request_id:uuid}}/{path}",
        response_model=RequestPublic,
        summary=summary,
        responses=ACTION_ERRORS,
    )


@_action_route("pause", "Stop the clock")
async def pause(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: PauseBody,
) -> RequestPublic:
    """Pause while waiting for the subject.

    `awaiting_clarification` stops the clock: the days from today to the day you resume,
    both included, are added to the deadline. `awaiting_fee` (a fee for a manifestly
    unfounded or excessive request) restarts the clock on the day you resume.
    """
    await lifecycle.pause(
        session,
        settings=settings,
        dsr=dsr,
        reason=body.reason,
        note=body.note,
        actor=officer.client_id,
        now=now,
    )
    return service.request_public(dsr, settings, now)


@_action_route("resume", "Restart the clock")
async def resume(
    officer: Officer, dsr: LockedRequest, session: SessionDep, settings: SettingsDep, now: NowDep
) -> RequestPublic:
    """Resume a paused request; the new due date is computed from the stop-the-clock rules."""
    await lifecycle.resume(session, settings=settings, dsr=dsr, actor=officer.client_id, now=now)
    return service.request_public(dsr, settings, now)


@_action_route("extend", "Extend the deadline by two months")
async def extend(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: ExtendBody,
) -> RequestPublic:
    """Extend a complex or numerous request once, on or before its original due date.

    The new due date is three calendar months from the clock start (45 more days for CCPA).
    The subject must be told of the extension and its reasons within the first month: the
    service emails them the new due date and your `reason`.
    """
    await lifecycle.extend(
        session, settings=settings, dsr=dsr, reason=body.reason, actor=officer.client_id, now=now
    )
    return service.request_public(dsr, settings, now)


@_action_route("reject", "Refuse the request")
async def reject(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: RejectBody,
) -> RequestPublic:
    """Refuse: manifestly unfounded, excessive, identity not verified, or an exemption.

    The answer's `rejection` block holds what you must tell the subject: the reason, their
    right to complain to the regulator (the ICO under UK GDPR) and to seek a judicial remedy.
    The service emails the same notice to the subject.
    """
    await lifecycle.reject(
        session,
        settings=settings,
        dsr=dsr,
        reason=body.reason,
        explanation=body.explanation,
        actor=officer.client_id,
        now=now,
    )
    return service.request_public(dsr, settings, now)


@_action_route("cancel", "Cancel the request")
async def cancel(
    principal: Submitter,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[CancelBody | None, Body()] = None,
) -> RequestPublic:
    """Withdraw a request (the subject withdrew it, or it was logged by mistake).

    Integrations may cancel the requests they submitted; officers any request.
    """
    await lifecycle.cancel(
        session,
        settings=settings,
        dsr=dsr,
        note=body.note if body else None,
        actor=principal.client_id,
        now=now,
    )
    return service.request_public(dsr, settings, now, viewer=principal)


@_action_route("complete", "Mark the request answered")
async def complete(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[CompleteBody | None, Body()] = None,
) -> RequestPublic:
    """Record that the subject has been answered; the audit trail notes whether on time.

    The subject is emailed the `summary` and how the result reaches them.
    """
    await lifecycle.complete(
        session,
        settings=settings,
        dsr=dsr,
        summary=body.summary if body else None,
        actor=officer.client_id,
        now=now,
    )
    return service.request_public(dsr, settings, now)
