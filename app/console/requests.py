"""The console's request page (``/console/requests/{id}``), with a form for every officer
action on a case.

Each POST is CSRF-checked (``CsrfForm``), builds the same body model the API route takes,
calls the same service with the signed-in person as actor, and answers 303 back to the
request page with a fixed flash message. A refusal (409, 422...) is shown on the page with
its status, the transaction rolled back; nothing typed into a form is logged or echoed.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import FormData

from app.casework import assignment, notes
from app.casework.schemas import NoteCreate
from app.console import request_page
from app.console.deps import ConsoleError, ConsolePerson, ConsoleUser, CsrfForm, redirect, render
from app.core.config import Settings
from app.core.deps import NowDep, SessionDep, SessionmakerDep, SettingsDep
from app.core.errors import AppError
from app.correspondence import service as correspondence
from app.correspondence.schemas import MessageCreate, ReplyCreate
from app.fulfilment import approval
from app.fulfilment import service as fulfilment
from app.fulfilment.schemas import FulfilBody
from app.models import DsrRequest
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


# ---------------------------------------------------------------- the request page


@dataclass(frozen=True)
class CasePage:
    """One case as the signed-in person sees it, and what its page needs to render."""

    request: Request
    request_id: uuid.UUID
    person: ConsolePerson
    session: AsyncSession
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    now: datetime

    async def load(self, *, for_update: bool = False, fresh: bool = False) -> DsrRequest:
        """The request if this person may see it; else the 404 page."""
        try:
            if fresh:
                # After a rollback: read the row again, never the refused change.
                found = await self.session.get(DsrRequest, self.request_id, populate_existing=True)
                if found is not None:
                    return found
            return await visible_request(
                self.session, self.person.principal, self.request_id, for_update=for_update
            )
        except AppError:
            raise ConsoleError(404, "No such request.") from None

    async def page(
        self,
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
            await self.session.commit()
            plan, plan_error = await request_page.load_plan(
                self.sessionmaker, request_id=self.request_id, settings=self.settings, now=self.now
            )
        dsr = await self.load(fresh=error is not None)
        context = await request_page.page_context(
            self.session,
            dsr=dsr,
            principal=self.person.principal,
            settings=self.settings,
            now=self.now,
            plan=plan,
            plan_error=plan_error,
        )
        context.update(message=message, error=error, error_section=error_section)
        return render(
            self.request, "request.html", context, person=self.person, status_code=status_code
        )


async def case_page(
    request: Request,
    request_id: RequestId,
    person: ConsoleUser,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    now: NowDep,
) -> CasePage:
    """What the request page and its downloads take (the request is loaded on demand)."""
    return CasePage(request, request_id, person, session, sessionmaker, settings, now)


CasePageDep = Annotated[CasePage, Depends(case_page)]


@router.get("/requests/{request_id}")
async def request_view(
    case: CasePageDep,
    done: str | None = None,
    plan: str | None = None,
) -> HTMLResponse:
    """One case: summary, deadline, timeline, verification, owner, notes, messages, plan,
    fulfilment, exports and the actions its status allows."""
    return await case.page(
        message=request_page.DONE_MESSAGES.get(done or ""), show_plan=plan == "1"
    )


# ---------------------------------------------------------------- the actions

Work = Callable[[DsrRequest], Awaitable[Any]]


@dataclass(frozen=True)
class CaseAction(CasePage):
    """An officer's POST on one case: its CSRF-checked form, and how the action answers."""

    form: FormData

    @property
    def actor(self) -> str:
        """Who the audit trail names: the signed-in person."""
        return self.person.principal.client_id

    async def run(
        self, *, done: str, section: str, work: Work, lock: bool = True, load: bool = True
    ) -> Response:
        """Run ``work`` on the (locked) request; 303 back with ``done``, or the page with the
        refusal (the transaction rolled back). ``load=False``: ``work`` loads it itself."""
        dsr = await self.load(for_update=lock) if load else None
        try:
            await work(dsr)  # type: ignore[arg-type]
        except AppError as refused:
            error, status_code = refused.detail, refused.status
        except ValidationError as invalid:
            error, status_code = _invalid_form(invalid), 422
        else:
            return redirect(f"{request_path(self.request_id)}?done={done}#{section}")
        await self.session.rollback()
        return await self.page(error=error, error_section=section, status_code=status_code)


async def case_action(form: CsrfForm, case: CasePageDep) -> CaseAction:
    """What every action route takes. ``CsrfForm`` comes first: a POST whose token is wrong
    gets the 403 page before the request is even looked up."""
    return CaseAction(**vars(case), form=form)


Case = Annotated[CaseAction, Depends(case_action)]


def _invalid_form(invalid: ValidationError) -> str:
    # Field names only: the values are whatever was typed (possibly personal data).
    fields = sorted({str(error["loc"][0]) for error in invalid.errors() if error["loc"]})
    return INVALID_FORM + (f": {', '.join(fields)}." if fields else ".")


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
async def send_email_code(case: Case) -> Response:
    """Email the subject a one-time code (as ``POST /v1/requests/{id}/verification``)."""

    async def work(dsr: DsrRequest) -> None:
        await verification.send_code(
            case.session, settings=case.settings, dsr=dsr, actor=case.actor, now=case.now
        )

    return await case.run(done="email-code", section="verification", work=work)


@router.post("/requests/{request_id}/verification/document")
async def record_document_check(case: Case) -> Response:
    """Record a document check; a pass starts the clock today."""

    async def work(dsr: DsrRequest) -> None:
        check = _body(
            DocumentVerification,
            method="document",
            document_type=_text(case.form, "document_type", 40),
            business_address_confirmed=case.form.get("business_address_confirmed") == "yes",
            result=_text(case.form, "result", 20),
        )
        await verification.record_document_check(
            case.session,
            settings=case.settings,
            dsr=dsr,
            check=check,
            actor=case.actor,
            now=case.now,
        )

    return await case.run(done="document", section="verification", work=work)


# ---------------------------------------------------------------- owner and notes


@router.post("/requests/{request_id}/assign")
async def assign(case: Case) -> Response:
    """Give the case to a person ("me": yourself; empty: nobody)."""
    chosen = _text(case.form, "assignee", 64)
    assignee = case.person.user_id if chosen == "me" else chosen

    async def work(dsr: DsrRequest) -> None:
        await assignment.assign(
            case.session,
            settings=case.settings,
            dsr=dsr,
            assignee=assignee,
            actor=case.actor,
            now=case.now,
        )

    return await case.run(done="assigned", section="owner", work=work)


@router.post("/requests/{request_id}/notes")
async def add_note(case: Case) -> Response:
    """Add an internal note (never sent to the subject)."""

    async def work(dsr: DsrRequest) -> None:
        body = _body(NoteCreate, text=_text(case.form, "text", 4001) or "")
        await notes.add_note(
            case.session,
            settings=case.settings,
            dsr=dsr,
            text=body.text,
            author=case.actor,
            now=case.now,
        )

    return await case.run(done="note", section="notes", work=work, lock=False)


# ---------------------------------------------------------------- messages


@router.post("/requests/{request_id}/messages")
async def send_message(case: Case) -> Response:
    """Write to the subject; a clarification on a running request stops the clock."""

    async def work(dsr: DsrRequest) -> None:
        body = _body(
            MessageCreate,
            kind=_text(case.form, "kind", 20),
            channel=_text(case.form, "channel", 10),
            text=_text(case.form, "text", 5001) or "",
        )
        await correspondence.send_message(
            case.session, settings=case.settings, dsr=dsr, body=body, actor=case.actor, now=case.now
        )

    return await case.run(done="message", section="messages", work=work)


def _local_datetime(value: str | None, settings: Settings) -> datetime | None:
    """A ``datetime-local`` field (no zone) as the controller's local time."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=settings.tz)


@router.post("/requests/{request_id}/messages/reply")
async def record_reply(case: Case) -> Response:
    """Record the subject's answer; a clarification pause ends on the day it arrived."""

    async def work(dsr: DsrRequest) -> None:
        body = _body(
            ReplyCreate,
            text=_text(case.form, "text") or "",
            received_at=_local_datetime(_text(case.form, "received_at", 40), case.settings),
        )
        await correspondence.record_reply(
            case.session, settings=case.settings, dsr=dsr, body=body, actor=case.actor, now=case.now
        )

    return await case.run(done="reply", section="messages", work=work)


# ---------------------------------------------------------------- plan and approval


@router.post("/requests/{request_id}/approve")
async def approve(case: Case) -> Response:
    """Approve the fulfilment plan (exactly the one shown, when its hash is sent)."""

    async def work(_dsr: DsrRequest) -> None:
        await approval.approve(
            case.session,
            sessionmaker=case.sessionmaker,
            settings=case.settings,
            request_id=case.request_id,
            plan_sha256=_text(case.form, "plan_sha256", 64),
            actor=case.actor,
            now=case.now,
        )

    # approve() plans in a transaction of its own, then reads and locks the request: end
    # this session's transaction first (SQLite's write lock would make the plan wait).
    await case.session.commit()
    return await case.run(done="approved", section="plan", work=work, lock=False, load=False)


# ---------------------------------------------------------------- lifecycle actions


def _action_work(action: lifecycle.Action, case: CaseAction) -> Work:
    session, settings, form = case.session, case.settings, case.form
    actor, now = case.actor, case.now

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
            note = _text(form, "note", 4000)
            await lifecycle.cancel(
                session, settings=settings, dsr=dsr, note=note, actor=actor, now=now
            )
        elif action is lifecycle.Action.COMPLETE:
            complete = _body(CompleteBody, summary=_text(form, "summary"))
            await lifecycle.complete(
                session, settings=settings, dsr=dsr, summary=complete.summary, actor=actor, now=now
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
async def request_action(action: str, case: Case) -> Response:
    """Pause, resume, extend, reject, cancel, complete or fulfil, as the API's actions."""
    chosen = FORM_ACTIONS.get(action)
    if chosen is None:
        raise ConsoleError(404, "No such action.")
    section = "fulfilment" if chosen is lifecycle.Action.FULFIL else "actions"
    return await case.run(done=chosen.value, section=section, work=_action_work(chosen, case))
