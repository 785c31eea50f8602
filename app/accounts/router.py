"""People's console accounts (admin): create, list, read, disable, enable, reset password."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response, status

from app.accounts import service
from app.accounts.schemas import (
    USER_CREATE_EXAMPLES,
    PasswordReset,
    PersonRole,
    UserCreate,
    UserCreated,
    UserPublic,
)
from app.auth.deps import Admin, TokenFirstRoute
from app.auth.scopes import Role
from app.core.deps import NowDep, SessionDep
from app.core.errors import AUTH_ERRORS, VALIDATION, problem_response
from app.core.pagination import Page
from app.models import User

router = APIRouter(prefix="/v1/users", tags=["Users"], route_class=TokenFirstRoute)

USER_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    404: problem_response("No user with this id."),
}
UserId = Annotated[
    str, Path(max_length=64, description="The person's id (`usr_...`).", examples=["usr_3f2a"])
]


async def load_user(_admin: Admin, session: SessionDep, user_id: UserId) -> User:
    """The account named in the path; 404 if there is none (admins only)."""
    return await service.get_user(session, user_id=user_id)


UserDep = Annotated[User, Depends(load_user)]


def user_public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        email=user.email,
        name=user.name,
        role=PersonRole(user.role),
        active=user.disabled_at is None,
        totp_enabled=user.totp_enabled,
        must_change_password=user.must_change_password,
        created_at=user.created_at,
        disabled_at=user.disabled_at,
        password_changed_at=user.password_changed_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserCreated,
    summary="Create a person's console account",
    responses={
        **AUTH_ERRORS,
        409: problem_response("An account with this email address already exists."),
        **VALIDATION,
    },
)
async def create_user(
    admin: Admin,
    session: SessionDep,
    now: NowDep,
    response: Response,
    body: Annotated[UserCreate, Body(openapi_examples=USER_CREATE_EXAMPLES)],
) -> UserCreated:
    """Give an officer or admin a login for the console at `/console`.

    A person is not an API client: they log in with their email address and a password
    (and, if they turn it on, a code from an authenticator app), and everything they do is
    recorded under their `id`. **The temporary password is shown only in this response**:
    hand it to the person over another channel; they must choose their own password at the
    first login. `officer` sees and acts on every request; `admin` also manages accounts.
    """
    user, temporary = await service.create_user(
        session,
        email=body.email,
        name=body.name,
        role=Role(body.role.value),
        actor=admin.client_id,
        now=now,
    )
    response.headers["Cache-Control"] = "no-store"
    return UserCreated(**user_public(user).model_dump(), temporary_password=temporary)


@router.get(
    "",
    response_model=Page[UserPublic],
    summary="List people's console accounts",
    responses={**AUTH_ERRORS, 400: problem_response("Invalid cursor.")},
)
async def list_users(
    _admin: Admin,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[UserPublic]:
    """Every person's account, newest first, with role, status and whether they use a code.

    Pass `next_cursor` back as `cursor` for the next page.
    """
    rows, next_cursor = await service.list_users(session, limit=limit, cursor=cursor)
    return Page[UserPublic](items=[user_public(row) for row in rows], next_cursor=next_cursor)


@router.get(
    "/{user_id}",
    response_model=UserPublic,
    summary="Read a person's console account",
    responses=USER_ERRORS,
)
async def get_user(user: UserDep) -> UserPublic:
    """One person's account: role, whether it is active, whether they log in with a code."""
    return user_public(user)


@router.post(
    "/{user_id}/disable",
    response_model=UserPublic,
    summary="Disable a person's console account",
    responses={
        **USER_ERRORS,
        409: problem_response("It is the account you are acting with."),
    },
)
async def disable_user(user: UserDep, admin: Admin, session: SessionDep, now: NowDep) -> UserPublic:
    """Stop a person logging in, e.g. when they leave: every open session of theirs ends at
    once. Their past actions stay in the audit trail under their id; cases they own keep
    them as assignee until reassigned. Enable again with `/enable`.
    """
    await service.disable_user(session, user=user, actor=admin.client_id, now=now)
    return user_public(user)


@router.post(
    "/{user_id}/enable",
    response_model=UserPublic,
    summary="Enable a disabled console account",
    responses=USER_ERRORS,
)
async def enable_user(user: UserDep, admin: Admin, session: SessionDep) -> UserPublic:
    """Let a disabled person log in again with their password. If it may be known to
    someone else, reset it (`/reset-password`) as well."""
    await service.enable_user(session, user=user, actor=admin.client_id)
    return user_public(user)


@router.post(
    "/{user_id}/reset-password",
    response_model=PasswordReset,
    summary="Reset a person's password",
    responses=USER_ERRORS,
)
async def reset_password(
    user: UserDep, admin: Admin, session: SessionDep, now: NowDep, response: Response
) -> PasswordReset:
    """Give a person a new temporary password, e.g. when they forgot theirs.

    **It is shown only in this response.** The old password stops working and every open
    session of theirs ends; they must choose their own password at the next login. Their
    second factor (if any) stays as it was.
    """
    temporary = await service.reset_password(session, user=user, actor=admin.client_id, now=now)
    response.headers["Cache-Control"] = "no-store"
    return PasswordReset(id=user.id, temporary_password=temporary)
