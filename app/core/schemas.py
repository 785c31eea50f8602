"""Model pieces every API shares: strict bodies, and the normalised forms of email and phone."""

import re
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any

import phonenumbers
from annotated_types import MinLen
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError


class StrictModel(BaseModel):
    """A request body: unknown keys refused, text stripped of surrounding whitespace.

    The documented ``maxLength`` and ``pattern`` apply to what the client sent, as a generated
    client checks them; the stripping comes after, and text that is only whitespace still
    counts as empty for ``minLength``.
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _strip(cls, value: Any, info: ValidationInfo) -> Any:
        # Plain text only: an enum member is a str too, and must stay one.
        if type(value) is not str or info.field_name is None:
            return value
        stripped = value.strip()
        if stripped != value:
            minimum = _min_length(cls, info.field_name)
            if minimum is not None and len(stripped) < minimum:
                raise PydanticCustomError(
                    "string_too_short",
                    "String should have at least {min_length} character"
                    + ("" if minimum == 1 else "s"),
                    {"min_length": minimum},
                )
        return stripped


@lru_cache(maxsize=1024)
def _min_length(model: type[BaseModel], field_name: str) -> int | None:
    field = model.model_fields.get(field_name)
    if field is None:
        return None
    limits = [item.min_length for item in field.metadata if isinstance(item, MinLen)]
    return max(limits) if limits else None


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_date_text(value: Any) -> Any:
    # Pydantic would read a number ("0", 0) as seconds since 1970: never what a client meant.
    if isinstance(value, date):
        return value
    if not (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


def _iso_datetime_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not (isinstance(value, str) and _ISO_DATETIME.match(value)):
        raise ValueError("must be an ISO 8601 date and time, e.g. 2026-11-21T10:15:00Z")
    return value


# A date or time sent as JSON or in a query: ISO 8601 text only.
TextDate = Annotated[date, BeforeValidator(_iso_date_text)]
TextAwareDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_datetime_text)]


def at_least_one_of(*fields: str) -> dict[str, Any]:
    """A JSON Schema saying an object needs one of ``fields`` as text (not null, not absent)."""
    return {
        "anyOf": [
            {"required": [field], "properties": {field: {"type": "string"}}} for field in fields
        ]
    }


# How the OpenAPI document describes identities, so generated clients (and tests) send real
# ones: "email" is the standard format; "phone" says E.164 or a national number that is valid.
EMAIL_FORMAT: dict[str, Any] = {"format": "email"}
PHONE_FORMAT: dict[str, Any] = {"format": "phone"}


def normalise_email(value: str) -> str:
    """Normalised address; the error never echoes the input (it is personal data)."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError("not a valid email address") from None


# Ofcom's numbers reserved for TV and radio drama (1,000 each: prefix + 3 digits), in E.164.
# They are never allocated to anyone, so demos and tests use them; libphonenumber calls some
# of them invalid (01632 960xxx, 07700 900xxx, 0115 496 0xxx), so they are listed here.
OFCOM_DRAMA_PREFIXES = frozenset(
    {
        "+441134960", "+441144960", "+441154960", "+441164960", "+441174960", "+441184960",
        "+441214960", "+441314960", "+441414960", "+441514960", "+441614960", "+441914980",
        "+442079460", "+442896496", "+442920180", "+441632960", "+447700900", "+448081570",
        "+449098790", "+443069990",
    }
)  # fmt: skip


def _ofcom_drama_number(e164: str) -> bool:
    return len(e164) == 13 and e164[:-3] in OFCOM_DRAMA_PREFIXES


def normalise_phone(value: str, default_region: str = "GB") -> str:
    """E.164 form of a valid number; national numbers are read in the default region.

    Valid means allocatable in its numbering plan (libphonenumber's metadata) or one of
    Ofcom's drama numbers: merely "possible" lengths let "12345" through as "+4412345".
    The error never echoes the input (it is personal data).
    """
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        raise ValueError("not a valid phone number") from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # The prefix test first: it is cheap, and the demo's numbers are drama numbers.
    if not (_ofcom_drama_number(e164) or phonenumbers.is_valid_number(number)):
        raise ValueError("not a valid phone number")
    return e164
