"""Officer casework: assign a case, keep internal notes, act on many requests at once."""

from typing import Annotated

from fastapi import APIRouter, Body, Query, status

from app.auth.deps import Officer, TokenFirstRoute
from app.casework import assignment, bulk, notes
from app.casework.schemas import (
    ASSIGN_EXAMPLES,
    BULK_EXAMPLES,
    NOTE_EXAMPLES,
    AssignBody,
    BulkBody,
    BulkReject,
    BulkResult,
    BulkResults,
    NoteCreate,
    NotePublic,
)
from app.core.deps import NowDep, SessionDep, SettingsDep
from app.core.errors import ACTION_ERRORS, AUTH_ERRORS, NOT_FOUND, VALIDATION
from app.core.pagination import Page
from app.core.strict_query import StrictQuery
from app.requests import service
from app.requests.deps import LockedRequest, RequestDep
from app.requests.schemas import RequestPublic

router = APIRouter(prefix="/v1/requests", tags=["Casework"], route_class=TokenFirstRoute)


@router.post(
    "/{request_id:uuid}/assign",
    response_model=RequestPublic,
    summary="Assign the case to an officer",
    responses=ACTION_ERRORS,
)
async def assign(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[AssignBody, Body(openapi_examples=ASSIGN_EXAMPLES)],
) -> RequestPublic:
    """Make an officer (or admin) the owner of an open case; `null` leaves it unassigned.

    `assignee` is the `client_id` of an active officer or admin client, or the `id` of an
    active officer or admin person (`usr_...`, see `/v1/users`) (422 otherwise). The
    board lists your own cases with `assignee=me`, and those nobody owns with
    `unassigned=true`. Closed requests (completed, rejected, cancelled) cannot be reassigned
    (409). The audit trail records `request.assigned` with the new and the previous owner.
    """
    await assignment.assign(
        session,
        settings=settings,
        dsr=dsr,
        assignee=body.assignee,
        actor=officer.client_id,
        now=now,
    )
    return service.request_public(dsr, settings, now)


@router.post(
    "/{request_id:uuid}/notes",
    status_code=status.HTTP_201_CREATED,
    response_model=NotePublic,
    summary="Add an internal note",
    responses={**AUTH_ERRORS, **NOT_FOUND, **VALIDATION},
)
async def add_note(
    officer: Officer,
    dsr: RequestDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[NoteCreate, Body(openapi_examples=NOTE_EXAMPLES)],
) -> NotePublic:
    """Write down why something was done, for the officers who read the case after you.

    Notes are internal: never sent to the subject, never in webhooks or logs, and encrypted
    at rest. The audit trail records that you added a note (`request.note_added`), not what
    it says. Allowed in every status, closed cases included. Up to 4,000 characters.
    """
    note = await notes.add_note(
        session, settings=settings, dsr=dsr, text=body.text, author=officer.client_id, now=now
    )
    return NotePublic(
        id=note.id or 0, author=note.author, created_at=note.created_at, text=body.text
    )


@router.get(
    "/{request_id:uuid}/notes",
    response_model=Page[NotePublic],
    summary="Read the internal notes",
    responses={**AUTH_ERRORS, **NOT_FOUND, **VALIDATION, 400: {"description": "Invalid cursor."}},
)
async def list_notes(
    _officer: Officer,
    _strict: StrictQuery,
    dsr: RequestDep,
    session: SessionDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[NotePublic]:
    """The case's internal notes, oldest first. Pass `next_cursor` back as `cursor`."""
    rows, next_cursor = await notes.list_notes(session, dsr=dsr, limit=limit, cursor=cursor)
    return Page[NotePublic](
        items=[
            NotePublic(
                id=row.id or 0,
                author=row.author,
                created_at=row.created_at,
                text=notes.note_text(row, settings),
            )
            for row in rows
        ],
        next_cursor=next_cursor,
    )


@router.post(
    "/bulk",
    response_model=BulkResults,
    summary="Reject or cancel many requests",
    responses={**AUTH_ERRORS, **VALIDATION},
)
async def bulk_action(
    officer: Officer,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[BulkBody, Body(openapi_examples=BULK_EXAMPLES)],
) -> BulkResults:
    """Reject or cancel up to 100 requests in one call, each exactly as the single action.

    Each request gets what `POST /v1/requests/{id}/reject` (or `/cancel`) would give it: its
    audit entry, webhook event and, for a refusal, the notice to the subject with their
    right to complain. The answer is 200 with one result per id, in the order sent: `200`
    done, `404` no such request, `409` not allowed in its status (already closed), `422`
    not a request id. One failing id never stops the others.
    """
    outcomes = await bulk.run(
        session,
        settings=settings,
        principal=officer,
        ids=body.ids,
        action=bulk.BulkAction(action="reject", reason=body.reason, explanation=body.explanation)
        if isinstance(body, BulkReject)
        else bulk.BulkAction(action="cancel", note=body.note),
        now=now,
    )
    return BulkResults(
        results=[
            BulkResult(
                id=outcome.id,
                status=outcome.status,  # type: ignore[arg-type]
                request_status=outcome.request_status,  # type: ignore[arg-type]
                detail=outcome.detail,
            )
            for outcome in outcomes
        ]
    )
