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


# ---------------------------------------------------------------- the plan and its approval


class ErasureTablePlan(BaseModel):
    """One table's rows of the subject and what erasure would do to them."""

    table: str
    rows: int = Field(description="The subject's rows in the table now.")
    deleted: int = Field(description="Rows that would be deleted.")
    anonymised: int = Field(description="Rows kept with some columns nulled or masked.")
    nulled: int = 0
    masked: int = 0
    retained: int = Field(description="Rows kept for a `retain` category (its legal reason).")
    nulled_columns: list[str] = Field(default_factory=list)
    masked_columns: list[str] = Field(default_factory=list)
    retained_columns: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)


class RetainedPlan(BaseModel):
    category: str
    reason: str = Field(description="The legal reason for keeping it, from the dataset map.")
    tables: list[str]


class RectificationPlanItem(BaseModel):
    """A field the source holds: the subject's current value(s) and the requested one."""

    field: str
    table: str
    rows: int
    current: Any = Field(description="Up to five distinct current values (personal data).")
    requested: Any = None


class FlaggedPlan(BaseModel):
    table: str | None = None
    rows: int
    supported: bool = Field(description="False: the source cannot record a restriction.")


class TaskAsk(BaseModel):
    request_type: str
    assignee: str | None = None
    instructions: str | None = None


class SourcePlan(BaseModel):
    """One data source in the plan; which fields appear depends on the request type."""

    source: str
    kind: Literal["sql", "http", "task"]
    status: Literal["planned", "not_previewable", "error"] = Field(
        description="`planned`; `not_previewable` (a task source, or an http source without "
        "POST /plan); `error` (the source failed: `detail` says how, never with a value)."
    )
    detail: str | None = None
    counts: dict[str, int] | None = Field(default=None, description="Totals per action.")
    tables: list[ErasureTablePlan] | None = Field(default=None, description="Erasure.")
    retained: list[RetainedPlan] | None = Field(default=None, description="Erasure.")
    changes: list[RectificationPlanItem] | None = Field(default=None, description="Rectification.")
    not_held: list[str] | None = Field(default=None, description="Rectification.")
    flagged: FlaggedPlan | None = Field(default=None, description="Restriction, objection.")
    records_by_table: dict[str, int] | None = Field(
        default=None, description="Access, portability."
    )
    records_by_category: dict[str, int] | None = Field(
        default=None, description="Access, portability."
    )
    would_ask: TaskAsk | None = Field(default=None, description="Task sources.")


class SuppressionPlan(BaseModel):
    channels: list[str]
    reason: str


class PlanPublic(BaseModel):
    """A dry run of fulfilment: nothing was changed in any source."""

    request_id: uuid.UUID
    request_type: RequestType
    generated_at: datetime
    plan_sha256: str = Field(
        description="sha256 of the plan's canonical JSON without `generated_at`: send it to "
        "`approve` to approve exactly this plan."
    )
    sources: list[SourcePlan]
    counts: dict[str, int] = Field(description="Per action, the total over the sources.")
    suppression: SuppressionPlan | None = Field(
        default=None, description="The channels the subject would be suppressed on."
    )
    notes: list[str] = Field(default_factory=list)


PLAN_EXAMPLE: dict[str, Any] = {
    "request_id": "5f0c6a52-3a4e-4bd8-9a43-0f1b2c3d4e5f",
    "request_type": "erasure",
    "generated_at": "2026-12-07T10:15:00Z",
    "plan_sha256": "9b4f3c1e0d8a7f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a291807f6e",
    "sources": [
        {
            "source": "demo_crm",
            "kind": "sql",
            "status": "planned",
            "counts": {"deleted": 6, "anonymised": 2, "nulled": 2, "masked": 0, "retained": 2},
            "tables": [
                {
                    "table": "orders",
                    "rows": 2,
                    "deleted": 0,
                    "anonymised": 2,
                    "nulled": 2,
                    "masked": 0,
                    "retained": 2,
                    "nulled_columns": ["delivery_address", "delivery_postcode"],
                    "masked_columns": [],
                    "retained_columns": ["order_id", "amount"],
                    "categories": ["financial", "contact"],
                },
                {"table": "contacts", "rows": 1, "deleted": 1, "anonymised": 0, "retained": 0},
            ],
            "retained": [
                {"category": "financial", "reason": "financial records, 6 years, HMRC",
                 "tables": ["orders"]}
            ],
        },
        {"source": "helpdesk", "kind": "http", "status": "error",
         "detail": "source helpdesk: POST /plan timed out"},
        {"source": "payroll", "kind": "task", "status": "not_previewable",
         "would_ask": {"request_type": "erasure", "assignee": "payroll-bot"}},
    ],
    "counts": {"deleted": 6, "anonymised": 2, "nulled": 2, "masked": 0, "retained": 2},
    "suppression": {"channels": ["email", "phone", "post", "sms"], "reason": "erasure"},
    "notes": [],
}  # fmt: skip


class ApproveBody(StrictModel):
    plan_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="The `plan_sha256` of the plan you looked at: the approval is refused "
        "(409) if the plan is no longer the same. Without it, the plan as it is now is "
        "approved.",
    )


APPROVE_EXAMPLES: dict[str, Any] = {
    "exact_plan": {
        "summary": "Approve exactly the plan you looked at",
        "value": {"plan_sha256": PLAN_EXAMPLE["plan_sha256"]},
    },
    "as_it_is": {"summary": "Approve the plan as it is now", "value": {}},
}
