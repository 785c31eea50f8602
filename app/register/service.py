"""The processing register: the Art. 30 record, and the Art. 15 information access packs carry.

The register is a YAML or JSON file (``DSR_PROCESSING_REGISTER_PATH``; the built-in one
describes the demo controller). It is validated when loaded, so a register that could give a
data subject incomplete information (a special category without its Art. 9 condition,
legitimate interests without saying which, automated decisions without their logic) stops
the service at start-up instead of reaching an access pack.
"""

import json
import logging
from collections.abc import Collection
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from app.core.config import Settings
from app.register.regulators import JUDICIAL_REMEDY, REGULATORS
from app.register.schemas import (
    Activity,
    Article6Basis,
    Article9Condition,
    LawfulBasis,
    ProcessingRegister,
)

logger = logging.getLogger("app.register")

BUILT_IN = "built-in"


ARTICLE_6_TEXT: dict[Article6Basis, tuple[str, str]] = {
    Article6Basis.CONSENT: ("6(1)(a)", "your consent"),
    Article6Basis.CONTRACT: ("6(1)(b)", "necessary for a contract with you"),
    Article6Basis.LEGAL_OBLIGATION: ("6(1)(c)", "necessary to comply with the law"),
    Article6Basis.VITAL_INTERESTS: ("6(1)(d)", "necessary to protect someone's life"),
    Article6Basis.PUBLIC_TASK: ("6(1)(e)", "necessary for a task in the public interest"),
    Article6Basis.LEGITIMATE_INTERESTS: ("6(1)(f)", "our legitimate interests"),
}


ARTICLE_9_TEXT: dict[Article9Condition, tuple[str, str]] = {
    Article9Condition.EXPLICIT_CONSENT: ("9(2)(a)", "your explicit consent"),
    Article9Condition.EMPLOYMENT: ("9(2)(b)", "employment and social security law"),
    Article9Condition.VITAL_INTERESTS: ("9(2)(c)", "protecting someone's life"),
    Article9Condition.NOT_FOR_PROFIT: ("9(2)(d)", "a not-for-profit body's members"),
    Article9Condition.MADE_PUBLIC: ("9(2)(e)", "data you have manifestly made public"),
    Article9Condition.LEGAL_CLAIMS: ("9(2)(f)", "legal claims"),
    Article9Condition.SUBSTANTIAL_PUBLIC_INTEREST: ("9(2)(g)", "substantial public interest"),
    Article9Condition.HEALTH_OR_SOCIAL_CARE: ("9(2)(h)", "health or social care"),
    Article9Condition.PUBLIC_HEALTH: ("9(2)(i)", "public health"),
    Article9Condition.ARCHIVING_RESEARCH_STATISTICS: (
        "9(2)(j)",
        "archiving, research or statistics",
    ),
}


# ------------------------------------------------------------------------------ loading


def _problem_list(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def parse_register(text: str, *, origin: str, json_format: bool = False) -> ProcessingRegister:
    """Parse and validate register text; ValueError names ``origin`` and every problem."""
    try:
        data = json.loads(text) if json_format else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if json_format else "YAML"
        raise ValueError(f"processing register {origin} is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"processing register {origin} must be a mapping at the top level")
    try:
        return ProcessingRegister.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"processing register {origin} is invalid: {_problem_list(exc)}") from None


@lru_cache(maxsize=16)
def _load(path: str | None) -> ProcessingRegister:
    if path is None:
        built_in = resources.files("app.register").joinpath("processing_register.yaml")
        return parse_register(built_in.read_text("utf-8"), origin=BUILT_IN)
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except FileNotFoundError:
        raise ValueError(f"processing register {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"processing register {path} cannot be read: {exc}") from None
    return parse_register(text, origin=path, json_format=file.suffix.lower() == ".json")


def load_register(settings: Settings) -> ProcessingRegister:
    """The register at ``DSR_PROCESSING_REGISTER_PATH`` (YAML, or JSON by its ``.json``
    suffix), else the built-in one; validated, then cached per path.

    Raises ValueError naming the file and each problem, so start-up can refuse a bad one.
    """
    return _load(settings.processing_register_path or None)


# ------------------------------------------------------------------------------ Art. 15


def _law(regulation: str) -> str:
    return "GDPR" if regulation == "eu_gdpr" else "UK GDPR"


# right -> (article, text completing "You have the right ...").
GDPR_RIGHTS: dict[str, tuple[str, str]] = {
    "rectification": (
        "Art. 16",
        "to have inaccurate personal data corrected and incomplete data completed.",
    ),
    "erasure": (
        "Art. 17",
        "to have your personal data erased where, for example, it is no longer needed, you "
        "withdraw consent or you object; data we must keep by law (such as financial records) "
        "is kept for the period stated.",
    ),
    "restriction": (
        "Art. 18",
        "to have the use of your personal data restricted while its accuracy or our grounds "
        "for using it are checked, or instead of erasure.",
    ),
    "objection": (
        "Art. 21",
        "to object to processing based on our legitimate interests, on grounds relating to "
        "your situation, and at any time and without giving a reason to direct marketing, "
        "including profiling for it.",
    ),
    "portability": (
        "Art. 20",
        "to receive the personal data you gave us, where we use it with your consent or for a "
        "contract, in a structured, machine-readable format (JSON and CSV), or to have it "
        "sent to another organisation.",
    ),
    "withdraw_consent": (
        "Art. 7(3)",
        "to withdraw your consent at any time; this does not affect what we did with it before.",
    ),
    "human_review": (
        "Art. 22",
        "not to be subject to a decision based solely on automated processing that "
        "significantly affects you, and to have a person review such a decision, to express "
        "your point of view and to contest it.",
    ),
}
CCPA_RIGHTS: dict[str, tuple[str, str]] = {
    "rectification": ("Cal. Civ. Code 1798.106", "to have inaccurate personal information "
                      "corrected."),
    "erasure": ("Cal. Civ. Code 1798.105", "to have personal information we collected from "
                "you deleted, subject to the exceptions in the law."),
    "restriction": ("Cal. Civ. Code 1798.121", "to limit our use and disclosure of your "
                    "sensitive personal information."),
    "objection": ("Cal. Civ. Code 1798.120", "to opt out of the sale or sharing of your "
                  "personal information."),
    "portability": ("Cal. Civ. Code 1798.130", "to receive your personal information in a "
                    "portable, readily usable format."),
    "non_discrimination": ("Cal. Civ. Code 1798.125", "not to be treated differently for "
                           "exercising these rights."),
}  # fmt: skip


def _ids(activities: list[Activity], *bases: Article6Basis) -> list[str]:
    return [activity.id for activity in activities if activity.lawful_basis.article_6 in bases]


def _rights(regulation: str, activities: list[Activity]) -> list[dict[str, Any]]:
    """The subject's rights; ``applies_to`` names the activities a right depends on."""
    if regulation == "ccpa":
        return [
            {"right": right, "reference": reference, "description": f"You have the right {text}"}
            for right, (reference, text) in CCPA_RIGHTS.items()
        ]
    applies_to: dict[str, list[str] | None] = {
        "rectification": None,
        "erasure": None,
        "restriction": None,
        "objection": [
            activity.id
            for activity in activities
            if activity.direct_marketing
            or activity.lawful_basis.article_6
            in (Article6Basis.LEGITIMATE_INTERESTS, Article6Basis.PUBLIC_TASK)
        ],
        "portability": _ids(activities, Article6Basis.CONSENT, Article6Basis.CONTRACT),
    }
    consented = _ids(activities, Article6Basis.CONSENT)
    if consented:
        applies_to["withdraw_consent"] = consented
    decided = [a.id for a in activities if a.automated_decision_making.exists]
    if decided:
        applies_to["human_review"] = decided
    rights = []
    for right, activity_ids in applies_to.items():
        article, text = GDPR_RIGHTS[right]
        entry: dict[str, Any] = {
            "right": right,
            "reference": f"{_law(regulation)} {article}",
            "description": f"You have the right {text}",
        }
        if activity_ids is not None:
            entry["applies_to"] = activity_ids
        rights.append(entry)
    return rights


def _lawful_basis(basis: LawfulBasis, regulation: str) -> dict[str, Any]:
    law = _law(regulation)
    article, meaning = ARTICLE_6_TEXT[basis.article_6]
    summary: dict[str, Any] = {
        "article_6": basis.article_6.value,
        "description": f"{law} Art. {article}: {meaning}",
        "explanation": basis.explanation,
    }
    if basis.legitimate_interests:
        summary["legitimate_interests"] = basis.legitimate_interests
    if basis.article_9 is not None:
        article, meaning = ARTICLE_9_TEXT[basis.article_9.condition]
        summary["article_9"] = {
            "condition": basis.article_9.condition.value,
            "description": f"{law} Art. {article}: {meaning}",
            "explanation": basis.article_9.explanation,
        }
    return summary


def supplementary_information(
    register: ProcessingRegister,
    *,
    categories: Collection[str] | None = None,
    regulation: str = "uk_gdpr",
) -> dict[str, Any]:
    """What a subject access pack must tell the subject besides their data (Art. 15(1)(a)-(h)
    and 15(2)), as a JSON-ready dict.

    With ``categories`` (those found about the subject), only the activities touching them
    are described; every category given is listed, described where the register knows it.
    Without, the whole register is described.
    """
    if categories is None:
        concerned = list(register.data_categories)
        activities = list(register.activities)
    else:
        concerned = list(dict.fromkeys(categories))
        wanted = set(concerned)
        activities = [a for a in register.activities if wanted & set(a.categories)]
        unregistered = sorted(wanted - set(register.data_categories))
        if unregistered:
            # Category names are schema, not personal data: safe to log.
            logger.warning("categories missing from the processing register: %s", unregistered)
    regulator = REGULATORS.get(regulation, REGULATORS["uk_gdpr"])
    return {
        "regulation": regulation,
        "controller": register.controller.model_dump(mode="json", exclude_none=True),
        "purposes": [
            {
                "activity": activity.id,
                "name": activity.name,
                "purpose": activity.purpose,
                "lawful_basis": _lawful_basis(activity.lawful_basis, regulation),
                "categories": _shown(activity.categories, categories),
            }
            for activity in activities
        ],
        "categories": [_category(register, name) for name in concerned],
        "recipients": _recipients(activities),
        "retention": [
            {
                "activity": activity.id,
                "categories": _shown(rule.categories or activity.categories, categories),
                "period": rule.period,
                **({"reason": rule.reason} if rule.reason else {}),
            }
            for activity in activities
            for rule in activity.retention
            if categories is None or set(rule.categories or activity.categories) & set(categories)
        ],
        "sources": [
            {"activity": activity.id, "sources": list(activity.sources)} for activity in activities
        ],
        "automated_decision_making": [
            {
                "activity": activity.id,
                **activity.automated_decision_making.model_dump(mode="json", exclude_none=True),
            }
            for activity in activities
        ],
        "international_transfers": [
            {"activity": activity.id, **transfer.model_dump(mode="json", exclude_none=True)}
            for activity in activities
            for transfer in activity.international_transfers
        ],
        "rights": _rights(regulation, activities),
        "right_to_complain": {
            **regulator.model_dump(),
            "judicial_remedy": JUDICIAL_REMEDY.get(regulation, JUDICIAL_REMEDY["uk_gdpr"]),
        },
    }


def _shown(names: Collection[str], concerned: Collection[str] | None) -> list[str]:
    """``names`` limited to the concerned categories (all of them when not filtering)."""
    return [name for name in names if concerned is None or name in concerned]


def _category(register: ProcessingRegister, name: str) -> dict[str, Any]:
    described = register.data_categories.get(name)
    return {
        "name": name,
        "description": described.description if described else None,
        "special_category": bool(described and described.special_category),
    }


def _recipients(activities: list[Activity]) -> list[dict[str, Any]]:
    """Each recipient once, with what it receives data for and for which activities."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for activity in activities:
        for recipient in activity.recipients:
            entry = merged.setdefault(
                (recipient.name, recipient.type.value),
                {
                    "name": recipient.name,
                    "type": recipient.type.value,
                    "purposes": [],
                    "activities": [],
                },
            )
            if recipient.country:
                entry["country"] = recipient.country
            if recipient.purpose not in entry["purposes"]:
                entry["purposes"].append(recipient.purpose)
            entry["activities"].append(activity.id)
    return list(merged.values())
