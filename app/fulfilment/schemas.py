"""The fulfilment API's models: the ``fulfil`` and ``lift-restriction`` bodies, and the task API
of ``task`` data sources."""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool

from app.core.schemas import StrictModel
from app.enums import RequestStatus, RequestType


class FulfilBody(StrictModel):
    """Input to ``fulfil``; only objections on legitimate interests or profiling need it."""

    objection_decision: Literal["uphold", "override"] | None = Field(
        default=None,
        description="For an objection to processing on legitimate interests or profiling: "
        "`uphold` stops the processing (flagged in the sources); `override` continues it on "
        "compelling legitimate grounds, which you must give in `grounds`.",
    )
    grounds: str | None = Field(
        default=None,
        max_length=4000,
        description="The compelling legitimate grounds that override the subject's interests "
        "(required with `override`; kept in the audit trail and told to the subject).",
    )
    note: str | None = Field(default=None, max_length=4000)


FULFIL_EXAMPLES: dict[str, Any] = {
    "no_body": {"summary": "Most requests: no body needed", "value": {}},
    "uphold": {
        "summary": "Objection (legitimate interests): uphold",
        "value": {"objection_decision": "uphold"},
    },
    "override": {
        "summary": "Objection (legitimate interests): override",
        "value": {
            "objection_decision": "override",
            "grounds": "Fraud prevention checks on active accounts are required by our card "
            "scheme rules and protect other customers.",
        },
    },
}


class LiftRestrictionBody(StrictModel):
    reason: str = Field(
        min_length=1,
        max_length=4000,
        description="Why the restriction ends (e.g. the accuracy check finished); the subject "
        "is told before the sources are unflagged (Art. 18(3)).",
    )


class TaskSubject(BaseModel):
    """Who the task is about: the assignee needs this to find them in its system."""

    email: str | None = None
    phone: str | None = None
    name: str | None = None
    customer_id: str | None = None


class TaskPublic(BaseModel):
    """A fulfilment task as its assignee (and officers) see it."""

    id: uuid.UUID
    request_id: uuid.UUID
    source: str = Field(description="The `task` data source this task belongs to.")
    instructions: str | None = Field(
        default=None, description="What the source's owner is asked to do (set at registration)."
    )
    status: Literal["open", "done", "failed", "superseded"]
    request_type: RequestType
    request_status: RequestStatus
    details: dict[str, Any] = Field(
        description="The request's details, e.g. the changes asked for by a rectification."
    )
    subject: TaskSubject
    due_at: datetime | None = Field(description="When the whole request is legally due.")
    note: str | None = None
    created_at: datetime
    completed_at: datetime | None = None


class TaskRecord(StrictModel):
    """One record the subject has in the assignee's system (access and portability)."""

    table: str = Field(min_length=1, max_length=100, examples=["tickets"])
    category: str = Field(min_length=1, max_length=100, examples=["communications"])
    record_id: str | int | None = Field(default=None, examples=["T-2211"])
    provided_by_subject: StrictBool = False
    data: dict[str, str | int | float | bool | None] = Field(
        max_length=200, examples=[{"subject": "Late delivery", "opened_at": "2026-08-01"}]
    )


class RetainedByTask(StrictModel):
    category: str = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=500, examples=["financial records, 6 years"])


class TaskResultBody(StrictModel):
    """What the assignee did."""

    status: Literal["done", "failed"]
    note: str | None = Field(
        default=None,
        max_length=2000,
        description="For the audit trail (never the subject's data).",
    )
    records: list[TaskRecord] | None = Field(
        default=None,
        max_length=10_000,
        description="Access and portability: the subject's records in your system; they go "
        "into the export.",
    )
    retained: list[RetainedByTask] | None = Field(
        default=None,
        max_length=100,
        description="Erasure: categories you kept, with the legal reason.",
    )


TASK_RESULT_EXAMPLES = {
    "erased": {
        "summary": "Erasure done, invoices kept",
        "value": {
            "status": "done",
            "note": "Helpdesk account closed",
            "retained": [{"category": "financial", "reason": "financial records, 6 years, HMRC"}],
        },
    },
    "access": {
        "summary": "Access: records for the export",
        "value": {
            "status": "done",
            "records": [
                {
                    "table": "tickets",
                    "category": "communications",
                    "record_id": "T-2211",
                    "provided_by_subject": True,
                    "data": {"subject": "Late delivery", "opened_at": "2026-08-01"},
                }
            ],
        },
    },
    "failed": {
        "summary": "Could not do it",
        "value": {"status": "failed", "note": "System offline until Monday"},
    },
}
