"""Model pieces every API shares: strict bodies, and the normalised forms of email and phone."""

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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
