"""Bodies and answers of the people's account routes (``/v1/users``)."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator

from app.core.schemas import EMAIL_FORMAT, StrictModel, normalise_email


class PersonRole(StrEnum):
    OFFICER = "officer"
    ADMIN = "admin"


class UserCreate(StrictModel):
    email: str = Field(
        max_length=320,
        json_schema_extra=EMAIL_FORMAT,
        description="Their work address; it is their login name.",
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Shown in the console."
    )
    role: PersonRole = Field(description="`officer` acts on requests; `admin` also manages.")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalise_email(value).lower()


class UserPublic(BaseModel):
    """A person's console account; never their password or TOTP secret."""

    id: str = Field(description="`usr_...`: the actor named in the audit trail.")
    email: str
    name: str
    role: PersonRole
    active: bool = Field(description="False once disabled: they cannot log in.")
    totp_enabled: bool = Field(description="Whether they log in with a code as well.")
    must_change_password: bool = Field(
        description="They hold a temporary password and must choose their own at next login."
    )
    created_at: datetime
    disabled_at: datetime | None
    password_changed_at: datetime


class UserCreated(UserPublic):
    temporary_password: str = Field(
        description="Shown only in this response: give it to the person over a separate "
        "channel; they must replace it at their first login."
    )


class PasswordReset(BaseModel):
    id: str
    temporary_password: str = Field(
        description="The new temporary password, shown only in this response; the old one "
        "and every open session of the person no longer work."
    )
    must_change_password: bool = True


USER_CREATE_EXAMPLES: dict[str, Any] = {
    "officer": {
        "summary": "A privacy officer",
        "value": {"email": "sam.officer@example.com", "name": "Sam Officer", "role": "officer"},
    },
    "admin": {
        "summary": "An admin",
        "value": {"email": "alex.admin@example.com", "name": "Alex Admin", "role": "admin"},
    },
}
