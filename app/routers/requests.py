"""Data subject requests: intake, the deadline board, the audit trail and officer actions."""

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.deps import (
    LockedRequest,
    NowDep,
    Officer,
    Reader,
    RequestDep,
    RequestId,
    SessionDep,
    SettingsDep,
    Submitter,
    visible_request,
)
from app.errors import Forbidden, problem
from app.routers.common import AUTH_ERRORS, CONFLICT, NOT_FOUND, VALIDATION, Problem
from app.schemas import (
    FULFIL_EXAMPLES,
    REQUEST_CREATE_EXAMPLES,
    REQUEST_SEARCH_EXAMPLES,
    VERIFICATION_EXAMPLES,
    CancelBody,
    CodeConfirmBody,
    CompleteBody,
    DocumentVerification,
    EmailCodeVerification,
    EventPublic,
    ExtendBody,
    FulfilBody,
    LiftRestrictionBody,
    Page,
    PauseBody,
    RejectBody,
    RequestCreate,
    RequestPublic,
    RequestSearch,
    RequestStatus,
    RequestType,
    VerificationBody,
    normalise_email,
)
from app.security import Principal, Scope
from app.services import fulfilment, lifecycle, verification
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
    settings: SettingsDep,
    payload: Annotated[RequestCreate, Body(openapi_examples=REQUEST_CREATE_EXAMPLES)],
    now: NowDep,
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
    holds their email address.
    """
    fingerprint = None
    if idempotency_key is not None:
        fingerprint = service.body_fingerprint(await request.body())
        async with request.app.state.sessionmaker() as session:
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
        request.app.state.committer,
        request.app.state.sessionmaker,
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
    now: NowDep,
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
    next page. Integrations see only the requests they submitted. To search by
    `subject_email` without putting the address in a URL (and so in proxy logs), use
    `POST /v1/requests/search`.
    """
    return await _requests_page(
        session,
        principal,
        settings,
        now,
        # Each value was validated as a query parameter already.
        RequestSearch.model_construct(
            status=status_,
            type=type_,
            overdue=overdue,
            due_before=due_before,
            subject_email=subject_email,
            limit=limit,
            cursor=cursor,
        ),
    )


@router.post(
    "/search",
    response_model=Page[RequestPublic],
    summary="Search requests (filters in the body)",
    responses={**AUTH_ERRORS, **VALIDATION, 400: {"description": "Invalid cursor."}},
)
async def search_requests(
    principal: Reader,
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
    return await _requests_page(session, principal, settings, now, search)


async def _requests_page(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    now: datetime,
    search: RequestSearch,
) -> Page[RequestPublic]:
    """One page of the deadline board, for both the GET and the search route."""
    email = None
    if search.subject_email is not None:
        try:
            email = normalise_email(search.subject_email)
        except ValueError:
            return Page[RequestPublic](items=[], next_cursor=None)
    filters = service.RequestFilters(
        status=search.status.value if search.status else None,
        type=search.type.value if search.type else None,
        overdue=search.overdue,
        due_before=search.due_before,
        subject_email=email,
    )
    rows, next_cursor = await service.list_requests(
        session,
        principal=principal,
        filters=filters,
        now=now,
        limit=search.limit,
        cursor=search.cursor,
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
async def get_request(dsr: RequestDep, settings: SettingsDep, now: NowDep) -> RequestPublic:
    """The request with its status, identity verification and deadline."""
    return service.to_public(dsr, settings, now)


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


def _action_route(path: str, summary: str):  # type: ignore[no-untyped-def]
    return actions.post(
        f"/{{request_id}}/{path}",
        response_model=RequestPublic,
        summary=summary,
        responses=ACTION_ERRORS,
    )


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {"application/problem+json": {}},
    }


VERIFICATION_ERRORS: dict[int | str, dict[str, Any]] = {
    **ACTION_ERRORS,
    403: _problem_response(
        "Your role does not allow this; `document` and `officer_attestation` are for officers."
    ),
    422: _problem_response(
        "Invalid body; the method is not allowed for this request type (`allowed_methods` "
        "lists those that are); or, for `email_code`, the subject has no email address."
    ),
    429: _problem_response(
        "`email_code`: a code was sent less than a minute ago or five times in the last "
        "hour; retry after the `Retry-After` seconds."
    ),
}


@actions.post(
    "/{request_id}/verification",
    response_model=RequestPublic,
    summary="Verify the subject's identity",
    responses=VERIFICATION_ERRORS,
)
async def verify(
    principal: Submitter,
    request_id: RequestId,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[VerificationBody, Body(openapi_examples=VERIFICATION_EXAMPLES)],
) -> RequestPublic:
    """Ask for, or record, proof of the subject's identity.

    * `email_code` (officers, and the integration that submitted the request, since CRMs
      drive this flow): emails the subject a 6-digit code, valid for 15 minutes by default
      (`DSR_VERIFICATION_CODE_TTL`), which they give you or your CRM to send to
      `…/verification/confirm`. Sending again makes earlier codes useless; a code can be
      resent after 60 seconds, at most 5 times in any hour (else 429 with `Retry-After`).
    * `document` (officers): the result of a document check you performed. A fail keeps the
      request waiting and tells the subject what they could send instead.
    * `officer_attestation` (officers): you confirm identity from context, e.g. the request
      came from the address on file; the `note` saying how is kept in the audit trail.

    Which methods a request type accepts is configurable (`DSR_VERIFICATION_POLICY`); by
    default access, portability, erasure and rectification need an email code, a document
    check or an identity assertion, while objection and restriction accept any method.
    Confirmed identity moves the request to `in_progress`; when the service had asked for
    it (a code or a document), the clock starts **today**. The document itself is never
    stored, and no code appears in any answer or in the audit trail.
    """
    # Officer-only methods are refused before the request is looked up, as for officer actions.
    if not isinstance(body, EmailCodeVerification) and Scope.REQUESTS_MANAGE not in (
        principal.scopes
    ):
        raise Forbidden(f"The {body.method} method needs the `{Scope.REQUESTS_MANAGE}` scope.")
    dsr = await visible_request(session, principal, request_id, for_update=True)
    actor = principal.client_id
    if isinstance(body, EmailCodeVerification):
        await verification.send_code(session, settings=settings, dsr=dsr, actor=actor, now=now)
    elif isinstance(body, DocumentVerification):
        await verification.record_document_check(
            session, settings=settings, dsr=dsr, check=body, actor=actor, now=now
        )
    else:
        await verification.attest(
            session, settings=settings, dsr=dsr, note=body.note, actor=actor, now=now
        )
    return service.to_public(dsr, settings, now)


@actions.post(
    "/{request_id}/verification/confirm",
    response_model=RequestPublic,
    summary="Confirm an emailed code",
    responses={
        **ACTION_ERRORS,
        422: _problem_response(
            "Invalid body; `Invalid or expired code` (wrong, expired or superseded); or "
            "`Too many attempts` (the code is dead: send a new one)."
        ),
    },
)
async def confirm_code(
    principal: Submitter,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: CodeConfirmBody,
) -> RequestPublic | Response:
    """Check the code the subject received by email (officers, and the submitting integration).

    Right: the request moves to `in_progress` and its clock starts today. Wrong, expired or
    superseded: 422 `invalid or expired code`. After 5 wrong attempts (by default) the code
    is dead and every attempt answers 422 `too many attempts` until a new code is sent (422,
    not 429: waiting does not help, a new code does). Answers never say how close a code
    was. Every attempt is in the audit trail (with the reason, for officers helping the
    subject), never the code itself.
    """
    outcome = await verification.confirm_code(
        session, settings=settings, dsr=dsr, code=body.code, actor=principal.client_id, now=now
    )
    if outcome is not verification.CodeCheck.VERIFIED:
        error = verification.CODE_ERRORS[outcome]()
        # Answered, not raised: raising would roll back the attempt count and its audit entry.
        return problem(error.status, error.title, error.detail, slug=error.slug)
    return service.to_public(dsr, settings, now)


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
    return service.to_public(dsr, settings, now)


@_action_route("resume", "Restart the clock")
async def resume(
    officer: Officer, dsr: LockedRequest, session: SessionDep, settings: SettingsDep, now: NowDep
) -> RequestPublic:
    """Resume a paused request; the new due date is computed from the stop-the-clock rules."""
    await lifecycle.resume(session, settings=settings, dsr=dsr, actor=officer.client_id, now=now)
    return service.to_public(dsr, settings, now)


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
    return service.to_public(dsr, settings, now)


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
    return service.to_public(dsr, settings, now)


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
    return service.to_public(dsr, settings, now)


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
    return service.to_public(dsr, settings, now)


@actions.post(
    "/{request_id}/fulfil",
    response_model=RequestPublic,
    summary="Run fulfilment against the data sources",
    responses={
        **ACTION_ERRORS,
        409: {
            "model": Problem,
            "description": "Not allowed in the request's status; fulfilment already under "
            "way; no data sources configured; or no identity to search the sources by.",
            "content": {"application/problem+json": {}},
        },
    },
)
async def fulfil(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[FulfilBody | None, Body(openapi_examples=FULFIL_EXAMPLES)] = None,
) -> RequestPublic:
    """Do what the request asks in every connected data source; the worker runs it.

    The request shows `fulfilment.status` (`queued`, `running`, `waiting_for_tasks`,
    `succeeded`, `failed`) and its progress. Per type:

    - **access**: every record of the subject, with the Art. 15 supplementary information
      from the processing register, as JSON and as a CSV zip; the subject is emailed
      expiring download links and `export.ready` is raised.
    - **portability**: only the data the subject provided, in the formats asked for, and
      sent to `transmit_to` when given.
    - **erasure**: each data category erased by its strategy (delete, null, mask); retained
      categories are listed with their legal reason; the subject goes on the suppression
      list; `subject.erased` tells recipients (Art. 19).
    - **rectification**: the requested changes applied in the sources; before and after
      values are kept in the audit trail only; `subject.rectified`.
    - **restriction**: the subject flagged as restricted in the sources and suppressed;
      `subject.restricted`; end it with `lift-restriction`.
    - **objection**: direct marketing is absolute: the subject is suppressed on the named
      channels. Legitimate interests or profiling need your decision in the body:
      `uphold` (processing stopped, flagged in the sources) or `override` with the
      compelling `grounds`.

    `task` sources get a `task.created` event each; the request completes when all tasks are
    reported. When the work succeeds the request is completed and the subject told. A failed
    run (`fulfilment.status` = `failed`, with `error`) can be run again.
    """
    await fulfilment.request_fulfilment(
        session,
        settings=settings,
        dsr=dsr,
        body=body or FulfilBody(),
        actor=officer.client_id,
        now=now,
    )
    return service.to_public(dsr, settings, now)


@_action_route("lift-restriction", "End a restriction of processing")
async def lift_restriction(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: LiftRestrictionBody,
) -> RequestPublic:
    """Lift the restriction this request put in place (a restriction, or an upheld objection).

    The subject is emailed first, with your `reason` (Art. 18(3)); then the worker unflags
    the sources and raises `subject.restriction_lifted`, and the suppression entries the
    restriction added are removed. 409 when the request restricts nothing.
    """
    await fulfilment.request_lift(
        session, settings=settings, dsr=dsr, reason=body.reason, actor=officer.client_id, now=now
    )
    return service.to_public(dsr, settings, now)
