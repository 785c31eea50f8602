"""The processing register's model (the Art. 30 record, as loaded and as served), and the
regulator contact a refusal and an access pack name."""

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

CategoryName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_\-]+$")]

Text = Annotated[str, Field(min_length=1, max_length=4000)]


class _Model(BaseModel):
    # Frozen: one cached register is shared by every caller.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Article6Basis(StrEnum):
    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"


class Article9Condition(StrEnum):
    EXPLICIT_CONSENT = "explicit_consent"
    EMPLOYMENT = "employment"
    VITAL_INTERESTS = "vital_interests"
    NOT_FOR_PROFIT = "not_for_profit"
    MADE_PUBLIC = "made_public"
    LEGAL_CLAIMS = "legal_claims"
    SUBSTANTIAL_PUBLIC_INTEREST = "substantial_public_interest"
    HEALTH_OR_SOCIAL_CARE = "health_or_social_care"
    PUBLIC_HEALTH = "public_health"
    ARCHIVING_RESEARCH_STATISTICS = "archiving_research_statistics"


class Article9Basis(_Model):
    condition: Article9Condition
    explanation: Text
    # UK: conditions (b), (g), (h), (i), (j) also need a DPA 2018 Schedule 1 condition.
    dpa_2018_schedule_1: str | None = Field(default=None, max_length=1000)


class LawfulBasis(_Model):
    article_6: Article6Basis
    explanation: Text
    legitimate_interests: str | None = Field(
        default=None, max_length=4000, description="Required for legitimate_interests."
    )
    article_9: Article9Basis | None = Field(
        default=None, description="Required when the activity processes special category data."
    )

    @model_validator(mode="after")
    def _interests_named(self) -> "LawfulBasis":
        # Art. 13(1)(d)/14(2)(b): the subject must be told which interests are relied on.
        if self.article_6 is Article6Basis.LEGITIMATE_INTERESTS and not self.legitimate_interests:
            raise ValueError("legitimate_interests must say which interests are pursued")
        return self


class RecipientType(StrEnum):
    PROCESSOR = "processor"
    CONTROLLER = "controller"
    JOINT_CONTROLLER = "joint_controller"
    PUBLIC_AUTHORITY = "public_authority"


class Recipient(_Model):
    name: Text
    type: RecipientType
    purpose: Text
    country: str | None = Field(default=None, max_length=100)


class RetentionRule(_Model):
    categories: list[CategoryName] | None = Field(
        default=None, description="The categories this period applies to; all when omitted."
    )
    period: Text
    reason: str | None = Field(default=None, max_length=4000)


class AutomatedDecisionMaking(_Model):
    exists: bool
    logic: str | None = Field(default=None, max_length=4000)
    significance: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _explained(self) -> "AutomatedDecisionMaking":
        # Art. 15(1)(h): meaningful information about the logic and the consequences.
        if self.exists and not (self.logic and self.significance):
            raise ValueError("automated decision-making that exists needs logic and significance")
        return self


class InternationalTransfer(_Model):
    recipient: Text
    country: Text
    safeguard: Text
    documentation: str | None = Field(default=None, max_length=1000)


class Activity(_Model):
    id: CategoryName
    name: Text
    purpose: Text
    data_subjects: list[Text] = Field(default_factory=list)
    lawful_basis: LawfulBasis
    categories: list[CategoryName] = Field(min_length=1)
    recipients: list[Recipient] = Field(default_factory=list)
    retention: list[RetentionRule] = Field(min_length=1)
    sources: list[Text] = Field(min_length=1)
    # Art. 21(2): the subject may object to direct marketing at any time, whatever the basis.
    direct_marketing: bool = False
    automated_decision_making: AutomatedDecisionMaking
    international_transfers: list[InternationalTransfer] = Field(default_factory=list)

    @model_validator(mode="after")
    def _retention_categories_are_the_activitys(self) -> "Activity":
        for rule in self.retention:
            stray = sorted(set(rule.categories or ()) - set(self.categories))
            if stray:
                raise ValueError(
                    f"retention names categories the activity does not list: {', '.join(stray)}"
                )
        return self


class DataCategory(_Model):
    description: Text
    special_category: bool = False


class Contact(_Model):
    name: Text
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    address: str | None = Field(default=None, max_length=1000)


class Controller(_Model):
    name: Text
    address: Text
    email: str = Field(min_length=3, max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    company_number: str | None = Field(default=None, max_length=50)
    dpo: Contact | None = Field(default=None, description="Data protection officer, if any.")
    eu_representative: Contact | None = None


class ProcessingRegister(_Model):
    """The controller's record of processing activities (UK GDPR / GDPR Art. 30)."""

    controller: Controller
    data_categories: dict[CategoryName, DataCategory] = Field(min_length=1)
    activities: list[Activity] = Field(min_length=1)
    security_measures: list[Text] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "ProcessingRegister":
        ids = [activity.id for activity in self.activities]
        duplicates = sorted({activity_id for activity_id in ids if ids.count(activity_id) > 1})
        if duplicates:
            raise ValueError(f"activity ids must be unique: {', '.join(duplicates)}")
        for activity in self.activities:
            unknown = [name for name in activity.categories if name not in self.data_categories]
            if unknown:
                raise ValueError(
                    f"activity {activity.id}: categories not described in data_categories: "
                    + ", ".join(unknown)
                )
            special = [
                name for name in activity.categories if self.data_categories[name].special_category
            ]
            if special and activity.lawful_basis.article_9 is None:
                raise ValueError(
                    f"activity {activity.id} processes special category data "
                    f"({', '.join(special)}) and needs lawful_basis.article_9"
                )
        return self


class RegulatorContact(BaseModel):
    name: str
    url: str
