"""Correspondence routes: write to the subject, record their reply, read the thread."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status

from app.auth.deps import Officer, TokenFirstRoute
from app.core.deps import NowDep, SessionDep, SettingsDep
from app.core.errors import ACTION_ERRORS, AUTH_ERRORS, NOT_FOUND, VALIDATION, problem_response
from app.core.pagination import Page
from app.core.strict_query import StrictQuery
from app.correspondence import service
from app.correspondence.schemas import (
    MESSAGE_EXAMPLES,
    REPLY_EXAMPLES,
    MessageCreate,
    MessagePublic,
    ReplyCreate,
)
from app.requests.deps import LockedRequest, RequestDep

router = APIRouter(prefix="/v1/requests", tags=["Correspondence"], route_class=TokenFirstRoute)

SEND_ERRORS: dict[int | str, dict[str, Any]] = {
    **ACTION_ERRORS,
    409: problem_response(
        "A clarification on a request that is not running (nor already paused for "
        "clarification), or an email to a subject the request holds no address for."
    ),
}
REPLY_ERRORS: dict[int | str, dict[str, Any]] = {
    **ACTION_ERRORS,
    409: problem_response("No message was sent on this request for the subject to answer."),
    422: problem_response(
        "Invalid body, or `received_at` in the future or before the message it answers."
    ),
}


@router.post(
    "/{request_id:uuid}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessagePublic,
    summary="Write to the subject",
    responses=SEND_ERRORS,
)
async def send_message(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[MessageCreate, Body(openapi_examples=MESSAGE_EXAMPLES)],
) -> MessagePublic:
    """Email the subject your `text`, wrapped with the request's reference and our name.

    * `clarification`: you need something from the subject to answer the request (which
      account, which period...). On a running (`in_progress`) request this **stops the
      clock today**: the request is paused with reason `awaiting_clarification`, as the
      Data (Use and Access) Act 2025 allows. Record their answer with
      `POST .../messages/reply`: the clock restarts on the day it arrived, and every day
      from today to that day (both included) is added to the deadline. A further
      clarification while the request is already paused for clarification is sent without a
      second pause. Not allowed while awaiting verification (no clock is running yet),
      while paused for a fee, or once the request is closed (409).
    * `information`: tells the subject something (progress, a delay); allowed in any
      status, and the clock is not affected.

    Without an email address on the request the answer is 409: write by post, then record
    the letter with `"channel": "post"` (a clarification recorded so still stops the
    clock). The answer shows the mail's delivery status (`queued` until the worker sends
    it). The text is stored encrypted and is never put in the audit trail or webhooks.
    """
    message = await service.send_message(
        session, settings=settings, dsr=dsr, body=body, actor=officer.client_id, now=now
    )
    return service.message_public(message, None, settings=settings)


@router.post(
    "/{request_id:uuid}/messages/reply",
    status_code=status.HTTP_201_CREATED,
    response_model=MessagePublic,
    summary="Record the subject's reply",
    responses=REPLY_ERRORS,
)
async def record_reply(
    officer: Officer,
    dsr: LockedRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: Annotated[ReplyCreate, Body(openapi_examples=REPLY_EXAMPLES)],
) -> MessagePublic:
    """Copy in the subject's answer from mail or post, with when it reached you.

    If the request is paused `awaiting_clarification`, it resumes **as of the day
    `received_at` falls on** (in the controller's time zone), not today: the clock waited
    from the day the clarification was sent to that day, both included, and exactly those
    days are added to the deadline. So record a letter that arrived last Tuesday with last
    Tuesday's date. `received_at` may not be in the future, nor before the clarification it
    answers (the latest one; else the latest message sent) was sent.
    """
    reply = await service.record_reply(
        session, settings=settings, dsr=dsr, body=body, actor=officer.client_id, now=now
    )
    return service.message_public(reply, None, settings=settings)


@router.get(
    "/{request_id:uuid}/messages",
    response_model=Page[MessagePublic],
    summary="The correspondence with the subject",
    responses={**AUTH_ERRORS, **NOT_FOUND, **VALIDATION, 400: {"description": "Invalid cursor."}},
)
async def list_messages(
    officer: Officer,
    dsr: RequestDep,
    _strict: StrictQuery,
    session: SessionDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[MessagePublic]:
    """Every message to and from the subject on this request, oldest first.

    Outbound messages carry their `delivery`: `queued` (waiting for the worker), `sent`
    (handed to the mail server, with `sent_at` and `attempts`) or `failed` (retries
    exhausted or the address refused: write by post). Letters (`channel: post`) show as
    sent when recorded. Pass `next_cursor` back as `cursor` for the next page.
    """
    rows, next_cursor = await service.list_messages(session, dsr=dsr, limit=limit, cursor=cursor)
    return Page[MessagePublic](
        items=[service.message_public(message, mail, settings=settings) for message, mail in rows],
        next_cursor=next_cursor,
    )
