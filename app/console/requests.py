"""The console's board (``/console``) and request page (``/console/requests/{id}``), with a
form for every officer action on a case.

Each POST is CSRF-checked (``CsrfForm``), builds the same body model the API route takes,
calls the same service with the signed-in person as actor, and answers 303 back to the
request page with a fixed flash message. A refusal (409, 422...) is shown on the page with
its status, the transaction rolled back; nothing typed into a form is logged or echoed.
"""

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from app.casework import assignment, notes
from app.casework.schemas import NoteCreate
from app.console import board, request_page
from app.console.deps import ConsoleError, ConsolePerson, ConsoleUser, CsrfForm, redirect, render
from app.core.deps import NowDep, SessionDep, SessionmakerDep, SettingsDep
from app.core.errors import AppError
from app.correspondence import service as correspondence
from app.correspondence.schemas import MessageCreate, ReplyCreate
from app.enums import RequestStatus, RequestType
from app.exports import download
from app.exports import service as exports
from app.fulfilment import approval
from app.fulfilment import service as fulfilment
from app.fulfilment.schemas import FulfilBody
from app.models import DsrRequest, Export
from app.requests import lifecycle
from app.requests.deps import visible_request
from app.requests.schemas import CompleteBody, ExtendBody, PauseBody, RejectBody
from app.verification import service as verification
from app.verification.schemas import DocumentVerification

router = APIRouter(prefix="/console", include_in_schema=False)

RequestId = Annotated[uuid.UUID, Path()]
INVALID_FORM = "Some answers in the form are missing or not valid"


def request_path(request_id: uuid.UUID) -> str:
    return f"/console/requests/{request_id}"


# ---------------------------------------------------------------- the board


@router.get("")
async def board_page(
    request: Request,
    person: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    tab: str | None = None,
    type: str | None = None,
    status: str | None = None,
    assignee: str | None = None,
    duplicates: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """The board: requests by tab and filters, the most urgent first."""
    query = board.BoardQuery.parse(
        tab=tab, type=type, status=status, assignee=assignee, duplicates=duplicates, page=page
    )
    rows, more = await board.board_page(
        session, principal=person.principal, query=query, settings=settings, now=now
    )
    return render(
        request,
        "board.html",
        {
            "rows": rows,
            "more": more,
            "query": query,
            "tabs": board.TABS,
            "types": [value.value for value in RequestType],
            "statuses": [value.value for value in RequestStatus],
            "people": await board.assignable_people(session),
        },
        person=person,
    )


# ---------------------------------------------------------------- the request page


async def _page(
    request: Request,
    person: ConsolePerson,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: datetime,
    request_id: uuid.UUID,
    *,
    message: str | None = None,
    error: str | None = None,
    error_section: str | None = None,
    status_code: int = 200,
    show_plan: bool = False,
) -> HTMLResponse:
    plan, plan_error = None, None
    if show_plan:
        # The plan reads in a transaction of its own: end this one (the session's touch).
        await session.commit()
        plan, plan_error = await request_page.load_plan(
            sessionmaker, request_id=request_id, settings=settings, now=now
        )
    dsr = await _load(session, person, request_id, fresh=error is not None)
    context = await request_page.page_context(
        session,
        dsr=dsr,
        principal=person.principal,
        settings=settings,
        now=now,
        plan=plan,
        plan_error=plan_error,
    )
    context.update(message=message, error=error, error_section=error_section)
    return render(request, "request.html", context, person=person, status_code=status_code)


async def _load(
    session: SessionDep,
    person: ConsolePerson,
    request_id: uuid.UUID,
    *,
    for_update: bool = False,
    fresh: bool = False,
) -> DsrRequest:
    try:
        if fresh:
            # After a rollback: read the row again, never the refused change.
            found = await session.get(DsrRequest, request_id, populate_existing=True)
            if found is not None:
                return found
        return await visible_request(session, person.principal, request_id, for_update=for_update)
    except AppError:
        raise ConsoleError(404, "No such request.") from None


@router.get("/requests/{request_id}")
async def request_view(
    request: Request,
    request_id: RequestId,
    person: ConsoleUser,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
    done: str | None = None,
    plan: str | None = None,
) -> HTMLResponse:
    """One case: summary, deadline, timeline, verification, owner, notes, messages, plan,
    fulfilment, exports and the actions its status allows."""
    return await _page(
        request,
        person,
        session,
        sessionmaker,
        settings,
        now,
        request_id,
        message=request_page.DONE_MESSAGES.get(done or ""),
        show_plan=plan == "1",
    )


Work = Callable[[DsrRequest], Awaitable[Any]]


async def _act(
    request: Request,
    person: ConsolePerson,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: datetime,
    request_id: uuid.UUID,
    *,
    done: str,
    section: str,
    work: Work,
    lock: bool = True,
    load: bool = True,
) -> Response:
    """Run ``work`` on the (locked) request; 303 back with ``done``, or the page with the
    refusal (the transaction rolled back). ``load=False``: ``work`` loads it itself."""
    dsr = await _load(session, person, request_id, for_update=lock) if load else None
    try:
        await work(dsr)  # type: ignore[arg-type]
    except AppError as refused:
        await session.rollback()
        return await _page(
            request,
            person,
            session,
            sessionmaker,
            settings,
            now,
            request_id,
            error=refused.detail,
            error_section=section,
            status_code=refused.status,
        )
    except ValidationError as invalid:
        await session.rollback()
        # Field names only: the values are whatever was typed (possibly personal data).
        fields = sorted({str(error["loc"][0]) for error in invalid.errors() if error["loc"]})
        detail = INVALID_FORM + (f": {', '.join(fields)}." if fields else ".")
        return await _page(
            request,
            person,
            session,
            sessionmaker,
            settings,
            now,
            request_id,
            error=detail,
            error_section=section,
            status_code=422,
        )
    return redirect(f"{request_path(request_id)}?done={done}#{section}")


def _text(form: FormData, name: str, max_length: int = 20_001) -> str | None:
    """A text field, bounded a little above any schema's limit (so the schema refuses a
    longer one instead of it being cut); empty is None."""
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value[:max_length]
    return value if value.strip() else None


def _body(model: type[BaseModel], **fields: Any) -> Any:
    """The API's body model built from the form (ValidationError if it is not valid)."""
    return model.model_validate(
        {name: value for name, value in fields.items() if value is not None}
    )


# ---------------------------------------------------------------- verification


@router.post("/requests/{request_id}/verification/email-code")
async def send_email_code(
    request: Request,
    request_id: RequestId,
    person: ConsoleUser,
    _form: CsrfForm,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Email the subject a one-time code (as ``POST /v1/requests/{id}/verification``)."""

    async def work(dsr: DsrRequest) -> None:
        await verification.send_code(
            session, settings=settings, dsr=dsr, actor=person.principal.client_id, now=now
        )

    return await _act(
        request,
        person,
        session,
        sessionmaker,
        settings,
        now,
        request_id,
        done="email-code",
        section="verification",
        work=work,
    )


@router.post("/requests/{request_id}/verification/document")
async def record_document_check(
    request: Request,
    request_id: RequestId,
    person: ConsoleUser,
    form: CsrfForm,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Record a document check; a pass starts the clock today."""

    async def work(dsr: DsrRequest) -> None:
        check = _body(
            DocumentVerification,
            method="document",
            document_type=_text(form, "document_type", 40),
            business_address_confirmed=form.get("business_address_confirmed") == "yes",
            result=_text(form, "result", 20),
        )
        await verification.record_document_check(
            session,
            settings=settings,
            dsr=dsr,
            check=check,
            actor=person.principal.client_id,
            now=now,
        )

    return await _act(
        request,
        person,
        session,
        sessionmaker,
        settings,
        now,
        request_id,
        done="document",
        section="verification",
        work=work,
    )


# ---------------------------------------------------------------- owner and notes


@router.post("/requests/{request_id}/assign")
async def assign(
    request: Request,
    request_id: RequestId,
    person: ConsoleUser,
    form: CsrfForm,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Give the case to a person ("me": yourself; empty: nobody)."""
    chosen = _text(form, "assignee", 64)
    assignee = person.user_id if chosen == "me" else chosen

    async def work(dsr: DsrRequest) -> None:
        await assignment.assign(
            session,
            settings=settings,
            dsr=dsr,
            assignee=assignee,
            actor=person.principal.client_id,
            now=now,
        )

    return await _act(
        request,
        person,
        session,
        sessionmaker,
        settings,
        now,
        request_id,
        done="assigned",
        section="owner",
        work=work,
    )


@router.post("/requests/{request_id}/notes")
async def add_note(
    request: Request,
    request_id: RequestId,
    person: ConsoleUser,
    form: CsrfForm,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Add an internal note (never sent to the subject)."""

    async def work(dsr: DsrRequest) -> None:
        body = _body(NoteCreate, text=_text(form, "text", 4001) or "")
        await notes.add_note(
            session,
            settings=settings,
            dsr=dsr,
            text=body.text,
            author=person.principal.client_id,
            now=now,
        )

    return await _act(
        request,
        person,
        session,
        sessionmaker,
        settings,
        now,
        request_id,
        done="note",
        section="notes",
        work=work,
        lock=False,
    )


# ---------------------------------------------------------------- messages


@router.post("/requests/{request_id}/messages")
async def send_message(
    request: Request,
    request_id: RequestId,
    person: ConsoleUser,
    form: CsrfForm,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Write to the subject; a clarification on a running request stops the clock."""

    async def work(dsr: DsrRequest) -> None:
        body = _body(
            MessageCreate,
            kind=_text(form, "kind", 20),
            channel=_text(form, "channel", 10),
            text=_text(form, "text", 5001) or "",
        )
        await correspondence.send_message(
            session,
            settings=settings,
            dsr=dsr,
            body=body,
            actor=person.principal.client_id,
            now=now,
        )

    return await _act(
        request,
        person,
        session,
        sessionmaker,
        settings,
        now,
        request_id,
        done="message",
        section="messages",
        work=work,
    )


def _local_datetime(value: str | None, settings: SettingsDep) -> datetime | None:
    """A ``datetime-local`` field (no zone) as the controller's local time."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=settings.tz)


@router.post("/requests/{request_id}/messages/reply")
async def record_reply(
    request: Request,
    request_id: RequestId,
    person: ConsoleUser,
    form: CsrfForm,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Record the subject's answer; a clarification pause ends on the day it arrived."""

    async def work(dsr: DsrRequest) -> None:
        body = _body(
            ReplyCreate,
            text=_text(form, "text") or "",
            received_at=_local_datetime(_text(form, "received_at", 40), settings),
        )
        await correspondence.record_reply(
            session,
            settings=settings,
            dsr=dsr,
            body=body,
            actor=person.principal.client_id,
            now=now,
        )

    return await _act(
        request,
        person,
        session,
        sessionmaker,
        settings,
        now,
        request_id,
        done="reply",
        section="messages",
        work=work,
    )


# ---------------------------------------------------------------- plan and approval


@router.post("/requests/{request_id}/approve")
async def approve(
    request: Request,
    request_id: RequestId,
    person: ConsoleUser,
    form: CsrfForm,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Approve the fulfilment plan (exactly the one shown, when its hash is sent)."""

    async def work(_dsr: DsrRequest) -> None:
        await approval.approve(
            session,
            sessionmaker=sessionmaker,
            settings=settings,
            request_id=request_id,
            plan_sha256=_text(form, "plan_sha256", 64),
            actor=person.principal.client_id,
            now=now,
        )

    # approve() plans in a transaction of its own, then reads and locks the request: end
    # this session's transaction first (SQLite's write lock would make the plan wait).
    await session.commit()
    return await _act(
        request,
        person,
        session,
        sessionmaker,
        settings,
        now,
        request_id,
        done="approved",
        section="plan",
        work=work,
        lock=False,
        load=False,
    )


# ---------------------------------------------------------------- lifecycle actions


def _action_work(
    action: lifecycle.Action,
    form: FormData,
    person: ConsolePerson,
    session: SessionDep,
    settings: SettingsDep,
    now: datetime,
) -> Work:
    actor = person.principal.client_id

    async def work(dsr: DsrRequest) -> None:
        if action is lifecycle.Action.PAUSE:
            pause = _body(PauseBody, reason=_text(form, "reason", 40), note=_text(form, "note"))
            await lifecycle.pause(
                session,
                settings=settings,
                dsr=dsr,
                reason=pause.reason,
                note=pause.note,
                actor=actor,
                now=now,
            )
        elif action is lifecycle.Action.RESUME:
            await lifecycle.resume(session, settings=settings, dsr=dsr, actor=actor, now=now)
        elif action is lifecycle.Action.EXTEND:
            extend = _body(ExtendBody, reason=_text(form, "reason") or "")
            await lifecycle.extend(
                session, settings=settings, dsr=dsr, reason=extend.reason, actor=actor, now=now
            )
        elif action is lifecycle.Action.REJECT:
            reject = _body(
                RejectBody, reason=_text(form, "reason", 40), explanation=_text(form, "explanation")
            )
            await lifecycle.reject(
                session,
                settings=settings,
                dsr=dsr,
                reason=reject.reason,
                explanation=reject.explanation,
                actor=actor,
                now=now,
            )
        elif action is lifecycle.Action.CANCEL:
            await lifecycle.cancel(
                session,
                settings=settings,
                dsr=dsr,
                note=_text(form, "note", 4000),
                actor=actor,
                now=now,
            )
        elif action is lifecycle.Action.COMPLETE:
            complete = _body(CompleteBody, summary=_text(form, "summary"))
            await lifecycle.complete(
                session,
                settings=settings,
                dsr=dsr,
                summary=complete.summary,
                actor=actor,
                now=now,
            )
        else:
            body = _body(
                FulfilBody,
                objection_decision=_text(form, "objection_decision", 20),
                grounds=_text(form, "grounds"),
            )
            await fulfilment.request_fulfilment(
                session, settings=settings, dsr=dsr, body=body, actor=actor, now=now
            )

    return work


FORM_ACTIONS = {
    action.value: action
    for action in (
        lifecycle.Action.PAUSE,
        lifecycle.Action.RESUME,
        lifecycle.Action.EXTEND,
        lifecycle.Action.REJECT,
        lifecycle.Action.CANCEL,
        lifecycle.Action.COMPLETE,
        lifecycle.Action.FULFIL,
    )
}


@router.post("/requests/{request_id}/actions/{action}")
async def request_action(
    request: Request,
    request_id: RequestId,
    action: str,
    person: ConsoleUser,
    form: CsrfForm,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Pause, resume, extend, reject, cancel, complete or fulfil, as the API's actions."""
    chosen = FORM_ACTIONS.get(action)
    if chosen is None:
        raise ConsoleError(404, "No such action.")
    section = "fulfilment" if chosen is lifecycle.Action.FULFIL else "actions"
    return await _act(
        request,
        person,
        session,
        sessionmaker,
        settings,
        now,
        request_id,
        done=chosen.value,
        section=section,
        work=_action_work(chosen, form, person, session, settings, now),
    )


# ---------------------------------------------------------------- exports


@router.get("/requests/{request_id}/exports/{export_id}")
async def download_export(
    request_id: RequestId,
    export_id: Annotated[uuid.UUID, Path()],
    person: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Download one export file (officers); the download is audited as the person's."""
    dsr = await _load(session, person, request_id)
    export = await session.get(Export, export_id)
    if export is None or export.request_id != dsr.id:
        raise ConsoleError(404, "No such export.")
    if not exports.is_available(export, now):
        raise ConsoleError(410, "This export has expired; fulfil the request again for a new one.")
    try:
        return await download.stream_export(
            export,
            dsr,
            session=session,
            settings=settings,
            now=now,
            actor=person.principal.client_id,
        )
    except AppError as refused:
        raise ConsoleError(refused.status, refused.detail) from None
