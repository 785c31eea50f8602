"""What a rejected data subject must be told: the reason and their remedies."""

from app.schemas import RegulatorContact, RejectionPublic

REGULATORS: dict[str, RegulatorContact] = {
    "uk_gdpr": RegulatorContact(
        name="Information Commissioner's Office (ICO)",
        url="https://ico.org.uk/make-a-complaint/",
    ),
    "eu_gdpr": RegulatorContact(
        name="The data protection supervisory authority of your EU member state",
        url="https://www.edpb.europa.eu/about-edpb/about-edpb/members_en",
    ),
    "ccpa": RegulatorContact(
        name="California Privacy Protection Agency",
        url="https://cppa.ca.gov/webapplications/complaint",
    ),
}

REASON_TEXT = {
    "manifestly_unfounded": "The request was found to be manifestly unfounded.",
    "excessive": "The request was found to be excessive (for example, repetitive).",
    "identity_not_verified": "We could not verify your identity, so we cannot act on the "
    "request without risking disclosure to someone else.",
    "exemption": "An exemption provided by law applies to the information requested.",
}

JUDICIAL_REMEDY = {
    "uk_gdpr": "You may also seek to enforce your rights through the courts (UK GDPR Art. 79).",
    "eu_gdpr": "You may also seek an effective judicial remedy before the courts (GDPR Art. 79).",
    "ccpa": "You may also have a right to bring a civil action under Cal. Civ. Code 1798.150.",
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
