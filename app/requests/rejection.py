"""What a rejected data subject must be told: the reason and their remedies."""

from app.register.regulators import JUDICIAL_REMEDY, REGULATORS
from app.requests.schemas import RejectionPublic

REASON_TEXT = {
    "manifestly_unfounded": "The request was found to be manifestly unfounded.",
    "excessive": "The request was found to be excessive (for example, repetitive).",
    "identity_not_verified": "We could not verify your identity, so we cannot act on the "
    "request without risking disclosure to someone else.",
    "exemption": "An exemption provided by law applies to the information requested.",
}


def rejection_notice(regulation: str, reason: str, explanation: str | None) -> RejectionPublic:
    regulator = REGULATORS.get(regulation, REGULATORS["uk_gdpr"])
    remedy = JUDICIAL_REMEDY.get(regulation, JUDICIAL_REMEDY["uk_gdpr"])
    reason_text = REASON_TEXT.get(reason, "")
    return RejectionPublic(
        reason=reason,
        explanation=explanation,
        right_to_complain=regulator,
        judicial_remedy=remedy,
        notice=f"{reason_text} You have the right to complain to the {regulator.name} "
        f"({regulator.url}). {remedy}",
    )
