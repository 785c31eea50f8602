"""Where a data subject may complain, and their judicial remedy, under each regulation.

Refusals (Art. 12(4)) and every access pack (Art. 15(1)(f)) name them.
"""

from app.register.schemas import RegulatorContact

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

JUDICIAL_REMEDY = {
    "uk_gdpr": "You may also seek to enforce your rights through the courts (UK GDPR Art. 79).",
    "eu_gdpr": "You may also seek an effective judicial remedy before the courts (GDPR Art. 79).",
    "ccpa": "You may also have a right to bring a civil action under Cal. Civ. Code 1798.150.",
}
