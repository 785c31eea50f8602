"""Bodies of the verification routes: the method chosen, and the code the subject received."""

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, field_validator

from app.core.schemas import StrictModel


class DocumentVerification(StrictModel):
    """An officer records the result of a document check (officers only)."""

    method: Literal["document"]
    document_type: Literal["passport", "driving_licence"]
    business_address_confirmed: StrictBool = False
    result: Literal["passed", "failed"]


class EmailCodeVerification(StrictModel):
    """Email the subject a one-time code (officers, and the submitting integration)."""

    method: Literal["email_code"]


class OfficerAttestation(StrictModel):
    """An officer confirms identity from context, e.g. the request came from the address
    on file (officers only)."""

    method: Literal["officer_attestation"]
    note: str = Field(
        min_length=1,
        max_length=2000,
        description="How you know it is the subject; kept in the audit trail.",
        examples=["Request sent from the email address on the customer record"],
    )


VerificationBody = Annotated[
    DocumentVerification | EmailCodeVerification | OfficerAttestation,
    Field(discriminator="method"),
]

VERIFICATION_EXAMPLES: dict[str, dict[str, Any]] = {
    "email_code": {
        "summary": "Email the subject a one-time code",
        "value": {"method": "email_code"},
    },
    "document": {
        "summary": "Record a passed document check",
        "value": {
            "method": "document",
            "document_type": "passport",
            "business_address_confirmed": True,
            "result": "passed",
        },
    },
    "officer_attestation": {
        "summary": "Confirm identity from context",
        "value": {
            "method": "officer_attestation",
            "note": "Request sent from the email address on the customer record",
        },
    },
}


class CodeConfirmBody(StrictModel):
    code: str = Field(
        min_length=1,
        max_length=20,
        description="The 6-digit code the subject received by email (spaces are ignored).",
        examples=["042917"],
    )

    @field_validator("code")
    @classmethod
    def _six_digits(cls, value: str) -> str:
        digits = "".join(value.split())
        # ASCII digits only: str.isdigit() would also admit other scripts' digits.
        if len(digits) != 6 or not all("0" <= char <= "9" for char in digits):
            raise ValueError("must be the 6 digits of the code")
        return digits
