"""Data subject requests: intake, the deadline board, the audit trail and officer actions."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Query, Request, status
from fastapi.responses import JSONResponse, Response

from app.deps import (
    Officer,
    Reader,
    RequestDep,
    RequestId,
    SessionDep,
    SettingsDep,
    Submitter,
)
from app.errors import Conflict, NotFound
from app.models import DsrRequest, utcnow
from app.routers.common import AUTH_ERRORS, CONFLICT, NOT_FOUND, VALIDATION
from app.schemas import (
    REQUEST_CREATE_EXAMPLES,
    CancelBody,
    CompleteBody,
    DocumentVerification,
    EventPublic,
    ExtendBody,
    Page,
    PauseBody,
    RejectBody,
    RequestCreate,
    RequestPublic,
    RequestStatus,
    RequestType,
    VerificationBody,
    normalise_email,
)
from app.services import lifecycle
from app.services import requests as service

router = APIRouter(prefix="/v1/requests", tags=["Requests"])
actions = APIRouter(prefix="/v1/requests", tags=["Request actions"])

ACTION_ERRORS = {**AUTH_ERRORS, **NOT_FOUND, **CONFLICT, **VALIDATION}


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
    session: SessionDep,
    settings: SettingsDep,
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
    confirmed. `details` depend on `type` (see the examples).
    """
    now = utcnow()
    fingerprint = None
    if idempotency_key is not None:
        fingerprint = service.body_fingerprint(await request.body())
        stored = await service.find_idempotent_response(
            session, principal=principal, key=idempotency_key, fingerprint=fingerprint
        )
        if stored is not None:
            return JSONResponse(
                stored,
                status_code=201,
                headers={"Idempotent-Replayed": "true", "Location": f"/v1/requests/{stored['id']}"},
            )
    _dsr, public = await service.create_request(
        session,
        settings=settings,
        principal=principal,
        payload=payload,
        now=now,
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
    session: SessionDep,
    settings: SettingsDep,
    status_: Annotated[RequestStatus | None, Query(alias="status")] = None,
    type_: Annotated[RequestType | None, Query(alias="type")] = None,
    overdue: Annotated[bool | None, Query(description="true: past due and running")] = None,
    due_before: Annotated[date | None, Query(description="Due strictly before this date")] = None,
    subject_email: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[RequestPublic]:
    """Requests newest first, with their deadlines.

    Filter by `status`, `type`, `overdue=true` (running requests past their due date),
    `due_before=YYYY-MM-DD` and `subject_email`. Pass `next_cursor` back as `cursor` for the
    next page. Integrations see only the requests they submitted.
    """
    email = None
    if subject_email is not None:
        try:
            email = normalise_email(subject_email)
        except ValueError:
            return Page[RequestPublic](items=[], next_cursor=None)
    now = utcnow()
    rows, next_cursor = await service.list_requests(
        session,
        principal=principal,
        filters=service.RequestFilters(
            status=status_.value if status_ else None,
            type=type_.value if type_ else None,
            overdue=overdue,
            due_before=due_before,
            subject_email=email,
        ),
        now=now,
        limit=limit,
        cursor=cursor,
    )
    return Page[RequestPublic](
        items=[service.to_public(row, settings, now) for row in rows], next_cursor=next_cursor
    )


@router.get(
    "/{request_id}",
    response_model=RequestPublic,
    summary="Get one request",
    responses={**AUTH_ERRORS, **NOT_FOUND, **VALIDATION},
)
async def get_request(dsr: RequestDep, settings: SettingsDep) -> RequestPublic:
    """The request with its status, identity verification and deadline."""
    return service.to_public(dsr, settings, utcnow())


@router.get(
    "/{request_id}/events",
    response_model=Page[EventPublic],
    summary="Audit trail of a request",
    responses={**AUTH_ERRORS, **NOT_FOUND, **VALIDATION},
)
async def list_events(
    dsr: RequestDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[EventPublic]:
    """Every change to the request, oldest first: who did what, when, and why."""
    rows, next_cursor = await service.list_events(session, dsr=dsr, limit=limit, cursor=cursor)
    return Page[EventPublic](
        items=[
            EventPublic(id=row.id or 0, type=row.type, actor=row.actor, at=row.at, data=row.data)
            for row in rows
        ],
        next_cursor=next_cursor,
    )


# ---------------------------------------------------------------- actions


async def _load_for_update(
    session: SessionDep, principal: Reader, request_id: RequestId
) -> DsrRequest:
    """Lock the row (PostgreSQL) so concurrent actions on one request serialise."""
    dsr = await session.get(DsrRequest, request_id, with_for_update=True)
    if dsr is None or not (principal.sees_all_requests or dsr.submitted_by == principal.client_id):
        raise NotFound("No request with this id is visible to you.")
    return dsr


LockedRequest = Annotated[DsrRequest, Depends(_load_for_update)]


def _action_route(path: str, summary: str):  # type: ignore[no-untyped-def]
    return actions.post(
        f"/{{request_id}}/{path}",
        response_model=RequestPublic,
        summary=summary,
        responses=ACTION_ERRORS,
    )


@_action_route("verification", "Record an identity check")
async def verify(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[VerificationBody, Body()],
) -> RequestPublic:
    """Record the result of an identity document check you performed.

    Send `method: document` with the `document_type` you saw and the `result`. A pass moves
    the request to `in_progress` and starts the clock **today**; a fail keeps it waiting.
    Who checked and when go into the audit trail; the document itself is never stored.
    (`method: email_code` arrives in a later release.)
    """
    now = utcnow()
    if not isinstance(body, DocumentVerification):
        lifecycle.ensure_allowed(dsr, lifecycle.Action.VERIFY)
        raise Conflict(
            "Email code verification is not available yet; record a document check.",
            title="Verification method not available",
        )
    await lifecycle.record_document_check(
        session, settings=settings, dsr=dsr, check=body, actor=officer.client_id, now=now
    )
    return service.to_public(dsr, settings, now)


@_action_route("pause", "Stop the clock")
async def pause(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    body: PauseBody,
) -> RequestPublic:
    """Pause while waiting for the subject.

    `awaiting_clarification` stops the clock: the days from today to the day you resume,
    both included, are added to the deadline. `awaiting_fee` (a fee for a manifestly
    unfounded or excessive request) restarts the clock on the day you resume.
    """
    now = utcnow()
    await lifecycle.pause(
        session,
        settings=settings,
        dsr=dsr,
        reason=body.reason,
        note=body.note,
        actor=officer.client_id,
        now=now,
    )
    return service.to_public(dsr, settings, now)


@_action_route("resume", "Restart the clock")
async def resume(
    officer: Officer, dsr: LockedRequest, session: SessionDep, settings: SettingsDep
) -> RequestPublic:
    """Resume a paused request; the new due date is computed from the stop-the-clock rules."""
    now = utcnow()
    await lifecycle.resume(session, settings=settings, dsr=dsr, actor=officer.client_id, now=now)
    return service.to_public(dsr, settings, now)


@_action_route("extend", "Extend the deadline by two months")
async def extend(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    body: ExtendBody,
) -> RequestPublic:
    """Extend a complex or numerous request once, on or before its original due date.

    The new due date is three calendar months from the clock start (45 more days for CCPA).
    The subject must be told of the extension and its reasons within the first month.
    """
    now = utcnow()
    await lifecycle.extend(
        session, settings=settings, dsr=dsr, reason=body.reason, actor=officer.client_id, now=now
    )
    return service.to_public(dsr, settings, now)


@_action_route("reject", "Refuse the request")
async def reject(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    body: RejectBody,
) -> RequestPublic:
    """Refuse: manifestly unfounded, excessive, identity not verified, or an exemption.

    The answer's `rejection` block holds what you must tell the subject: the reason, their
    right to complain to the regulator (the ICO under UK GDPR) and to seek a judicial remedy.
    """
    now = utcnow()
    await lifecycle.reject(
        session,
        settings=settings,
        dsr=dsr,
        reason=body.reason,
        explanation=body.explanation,
        actor=officer.client_id,
        now=now,
    )
    return service.to_public(dsr, settings, now)


@_action_route("cancel", "Cancel the request")
async def cancel(
    principal: Submitter,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[CancelBody | None, Body()] = None,
) -> RequestPublic:
    """Withdraw a request (the subject withdrew it, or it was logged by mistake).

    Integrations may cancel the requests they submitted; officers any request.
    """
    now = utcnow()
    await lifecycle.cancel(
        session,
        settings=settings,
        dsr=dsr,
        note=body.note if body else None,
        actor=principal.client_id,
        now=now,
    )
    return service.to_public(dsr, settings, now)


@_action_route("complete", "Mark the request answered")
async def complete(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[CompleteBody | None, Body()] = None,
) -> RequestPublic:
    """Record that the subject has been answered; the audit trail notes whether on time."""
    now = utcnow()
    await lifecycle.complete(
        session,
        settings=settings,
        dsr=dsr,
        summary=body.summary if body else None,
        actor=officer.client_id,
        now=now,
    )
    return service.to_public(dsr, settings, now)


@_action_route("fulfil", "Run fulfilment against the data sources")
async def fulfil(
    officer: Officer, dsr: LockedRequest, session: SessionDep, settings: SettingsDep
) -> RequestPublic:
    """Collect, erase or change the subject's data in the connected systems.

    Until data sources are configured this answers 409 `No data sources configured`.
    """
    await lifecycle.fulfil(session, dsr=dsr)
    return service.to_public(dsr, settings, utcnow())
