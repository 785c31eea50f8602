"""The suppression API's models, and the normalised identity forms the list is keyed by."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.schemas import (
    EMAIL_FORMAT,
    PHONE_FORMAT,
    StrictModel,
    at_least_one_of,
    normalise_email,
    normalise_phone,
)

IdentityKind = Literal["email", "phone"]

SuppressionChannel = Literal["email", "phone", "post", "sms"]


def suppression_email(value: str) -> str:
    """The address as the list keys it: validated, then lower-cased *entirely*.

    RFC 5321 lets the local part be case-sensitive, but virtually no mailbox provider treats
    it so, and a miss here means mailing someone who objected. Suppression must err on the
    side of suppressing, so ``Jane.Doe@Example.COM`` and ``jane.doe@example.com`` are one
    person. Raises ``ValueError`` (without the value) if it is not an address.
    """
    return normalise_email(value).lower()


def suppression_phone(value: str) -> str:
    """E.164 form (national numbers read as UK), so "01632 960001" is "+441632960001"."""
    return normalise_phone(value)


class Identities(StrictModel):
    """An email address, a phone number, or both; validated without echoing them back."""

    model_config = ConfigDict(json_schema_extra=at_least_one_of("email", "phone"))

    email: str | None = Field(
        default=None,
        max_length=320,
        json_schema_extra=EMAIL_FORMAT,
        examples=["jane.doe@example.com"],
    )
    phone: str | None = Field(
        default=None, max_length=40, json_schema_extra=PHONE_FORMAT, examples=["+441632960001"]
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else suppression_email(value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else suppression_phone(value)

    @model_validator(mode="after")
    def _at_least_one(self) -> "Identities":
        if self.email is None and self.phone is None:
            raise ValueError("give an email address, a phone number, or both")
        return self


class SuppressionCheck(Identities):
    pass


class SuppressionCheckResult(BaseModel):
    suppressed: bool = Field(description="True if any identity given is on the list.")
    channels: list[SuppressionChannel] = Field(
        description="Channels on which the person must not be contacted (empty if none)."
    )


class SuppressionCreate(Identities):
    channels: list[SuppressionChannel] = Field(
        default=["email", "phone", "post", "sms"],
        min_length=1,
        description="Channels to suppress; every channel if omitted.",
    )


class SuppressionPublic(BaseModel):
    """An entry as officers see it: never the identity, which the service does not hold."""

    id: uuid.UUID
    identity_kind: IdentityKind
    channels: list[SuppressionChannel]
    reason: str = Field(description="`objection`, `erasure`, `restriction` or `manual`.")
    request_id: uuid.UUID | None = Field(description="The request that caused it, if any.")
    created_at: datetime
    updated_at: datetime


class SuppressionsAdded(BaseModel):
    items: list[SuppressionPublic] = Field(description="One entry per identity given.")
