"""The signed-in person's own account page: change the password, turn two-step login (TOTP)
on or off. Every POST takes ``CsrfForm``."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.accounts import passwords, totp
from app.accounts import service as accounts
from app.console.deps import (
    ACCOUNT_PATH,
    ConsoleUser,
    CsrfForm,
    console_error,
    form_text,
    redirect,
    render,
)
from app.core.deps import NowDep, SessionDep, SettingsDep
from app.core.errors import AppError
from app.models import User

router = APIRouter(prefix="/console", include_in_schema=False)


async def _me(session: SessionDep, person_id: str) -> User:
    return await accounts.get_user(session, user_id=person_id)


def _account_page(
    request: Request,
    person: ConsoleUser,
    *,
    message: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    enrol: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "account.html",
        {"message": message, "error": error, "enrol": enrol, "min_length": passwords.MIN_LENGTH},
        person=person,
        status_code=status_code,
    )


@router.get("/account")
async def account_page(request: Request, person: ConsoleUser, done: str | None = None) -> Response:
    """Change the password; turn the second factor on or off."""
    messages = {
        "password": "Your password was changed. Your other sessions were ended.",
        "totp-on": "Two-step login is on: you will be asked for a code at each login.",
        "totp-off": "Two-step login is off.",
    }
    return _account_page(request, person, message=messages.get(done or ""))


@router.post("/account/password")
async def change_password(
    request: Request,
    person: ConsoleUser,
    form: CsrfForm,
    session: SessionDep,
    now: NowDep,
) -> Response:
    user = await _me(session, person.user_id)
    current = form_text(form, "current_password", max_length=passwords.MAX_LENGTH + 1)
    new = form_text(form, "new_password", max_length=passwords.MAX_LENGTH + 1)
    if not passwords.verify_password(current, user.password_hash):
        return _account_page(
            request, person, error="Your current password is not correct.", status_code=422
        )
    if new != form_text(form, "confirm_password", max_length=passwords.MAX_LENGTH + 1):
        return _account_page(
            request, person, error="The two new passwords are not the same.", status_code=422
        )
    if passwords.verify_password(new, user.password_hash):
        return _account_page(
            request,
            person,
            error="Choose a password other than the current one.",
            status_code=422,
        )
    try:
        await accounts.set_password(
            session, user=user, password=new, now=now, keep_session=person.session_id
        )
    except AppError as refused:
        return _account_page(request, person, error=refused.detail, status_code=422)
    return redirect(f"{ACCOUNT_PATH}?done=password")


@router.post("/account/totp/start")
async def start_totp(
    request: Request,
    person: ConsoleUser,
    _form: CsrfForm,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """A new secret for the authenticator app, shown once; confirmed by a code."""
    user = await _me(session, person.user_id)
    try:
        secret = await accounts.start_totp(session, user=user, settings=settings)
    except AppError as refused:
        raise console_error(refused) from None
    return _account_page(
        request,
        person,
        enrol={"secret": secret, "uri": totp.provisioning_uri(secret, email=user.email)},
    )


@router.post("/account/totp/confirm")
async def confirm_totp(
    request: Request,
    person: ConsoleUser,
    form: CsrfForm,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    user = await _me(session, person.user_id)
    try:
        await accounts.confirm_totp(
            session,
            user=user,
            code=form_text(form, "code", max_length=20),
            settings=settings,
            now=now,
        )
    except AppError as refused:
        return _account_page(
            request,
            person,
            error=refused.detail,
            status_code=refused.status,
            enrol={"secret": "", "uri": ""},
        )
    return redirect(f"{ACCOUNT_PATH}?done=totp-on")


@router.post("/account/totp/disable")
async def disable_totp(
    request: Request, person: ConsoleUser, form: CsrfForm, session: SessionDep
) -> Response:
    user = await _me(session, person.user_id)
    try:
        await accounts.disable_totp(
            session,
            user=user,
            password=form_text(form, "password", max_length=passwords.MAX_LENGTH + 1),
        )
    except AppError as refused:
        return _account_page(request, person, error=refused.detail, status_code=refused.status)
    return redirect(f"{ACCOUNT_PATH}?done=totp-off")
