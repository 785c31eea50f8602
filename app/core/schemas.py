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


def normalise_phone(value: str, default_region: str = "GB") -> str:
    """E.164 form; national numbers are read in the controller's default region."""
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        raise ValueError("not a valid phone number") from None
    # "Possible", not "valid": Ofcom's drama ranges (01632 960xxx) are real test numbers.
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
