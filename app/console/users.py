"""The admins' pages for people's console accounts: list, create, disable, enable and reset
a password, over the same service as ``/v1/users``. Every POST takes ``CsrfForm``."""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from app.accounts import service as accounts
from app.auth.scopes import Role
from app.console.deps import (
    ConsoleAdmin,
    ConsoleError,
    ConsolePerson,
    CsrfForm,
    console_error,
    form_text,
    redirect,
    render,
)
from app.core.deps import NowDep, SessionDep
from app.core.errors import AppError

router = APIRouter(prefix="/console", include_in_schema=False)


async def _users_page(
    request: Request,
    person: ConsolePerson,
    session: SessionDep,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows, _next = await accounts.list_users(session, limit=200, cursor=None)
    return render(
        request,
        "users.html",
        {"users": rows, "error": error, "roles": [Role.OFFICER.value, Role.ADMIN.value]},
        person=person,
        status_code=status_code,
    )


@router.get("/users")
async def users_page(request: Request, person: ConsoleAdmin, session: SessionDep) -> Response:
    """Everyone's console account; create, disable, enable, reset a password."""
    return await _users_page(request, person, session)


@router.post("/users")
async def create_user(
    request: Request, person: ConsoleAdmin, form: CsrfForm, session: SessionDep, now: NowDep
) -> Response:
    role = form_text(form, "role", max_length=20)
    if role not in (Role.OFFICER.value, Role.ADMIN.value):
        return await _users_page(
            request, person, session, error="Choose officer or admin.", status_code=422
        )
    try:
        user, temporary = await accounts.create_user(
            session,
            email=form_text(form, "email", max_length=320),
            name=form_text(form, "name", max_length=200),
            role=Role(role),
            actor=person.user_id,
            now=now,
        )
    except AppError as refused:
        return await _users_page(
            request, person, session, error=refused.detail, status_code=refused.status
        )
    return render(
        request,
        "user_password.html",
        {"user": user, "temporary_password": temporary, "created": True},
        person=person,
        status_code=201,
    )


@router.post("/users/{user_id}/{action}")
async def user_action(
    request: Request,
    user_id: Annotated[str, Path(max_length=64)],
    action: str,
    person: ConsoleAdmin,
    _form: CsrfForm,
    session: SessionDep,
    now: NowDep,
) -> Response:
    """Disable, enable or reset the password of one account."""
    if action not in ("disable", "enable", "reset-password"):
        raise ConsoleError(404, "No such action.")
    try:
        user = await accounts.get_user(session, user_id=user_id)
        if action == "disable":
            await accounts.disable_user(session, user=user, actor=person.user_id, now=now)
        elif action == "enable":
            await accounts.enable_user(session, user=user, actor=person.user_id)
        else:
            temporary = await accounts.reset_password(
                session, user=user, actor=person.user_id, now=now
            )
            return render(
                request,
                "user_password.html",
                {"user": user, "temporary_password": temporary, "created": False},
                person=person,
            )
    except AppError as refused:
        raise console_error(refused) from None
    return redirect("/console/users")
