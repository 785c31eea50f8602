"""Casework API models: assignment, notes and bulk actions, with the examples in ``/docs``."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from app.casework.bulk import MAX_IDS
from app.core.schemas import StrictModel
from app.enums import RejectReason, RequestStatus


class AssignBody(StrictModel):
    assignee: str | None = Field(
        min_length=1,
        max_length=64,
        description="The `client_id` of an active officer or admin client, or the `id` of an "
        "active officer or admin user (`usr_...`); null unassigns.",
        examples=["offic_472465fb73812f91"],
    )


ASSIGN_EXAMPLES: dict[str, dict[str, Any]] = {
    "assign": {
        "summary": "Give the case to an officer",
        "value": {"assignee": "offic_472465fb73812f91"},
    },
    "unassign": {"summary": "Nobody owns the case", "value": {"assignee": None}},
}


class NoteCreate(StrictModel):
    text: str = Field(
        min_length=1,
        max_length=4000,
        examples=["Called the subject: the account is the one opened in 2019."],
    )


class NotePublic(BaseModel):
    id: int
    author: str = Field(description="The `client_id` of who wrote it.")
    created_at: datetime
    text: str


NOTE_EXAMPLES: dict[str, dict[str, Any]] = {
    "note": {
        "summary": "Why a decision was taken",
        "value": {"text": "Identity checked against the passport copy held since 2021."},
    }
}

BulkIds = Annotated[
    list[Annotated[str, Field(max_length=100)]],
    Field(
        min_length=1,
        max_length=MAX_IDS,
        description=f"1 to {MAX_IDS} request ids, each listed once.",
    ),
]


class _BulkBase(StrictModel):
    ids: BulkIds

    @field_validator("ids")
    @classmethod
    def _unique(cls, ids: list[str]) -> list[str]:
        if len(set(ids)) != len(ids):
            raise ValueError("each id may be listed only once")
        return ids


class BulkReject(_BulkBase):
    action: Literal["reject"]
    reason: RejectReason
    explanation: str | None = Field(
        default=None, max_length=4000, description="Sent to each subject with the refusal."
    )


class BulkCancel(_BulkBase):
    action: Literal["cancel"]
    note: str | None = Field(default=None, max_length=4000)


BulkBody = Annotated[BulkReject | BulkCancel, Field(discriminator="action")]

BULK_EXAMPLES: dict[str, dict[str, Any]] = {
    "reject": {
        "summary": "Refuse a burst of identical requests as excessive",
        "value": {
            "action": "reject",
            "ids": [
                "5f0c6a8e-3b7d-4c1e-9a51-2b8f0d3e6c11",
                "0b8e2f4c-7a19-4d3b-8c60-1e5f9a2d7b34",
            ],
            "reason": "excessive",
            "explanation": "The same request was made 14 times this week; see our answer of "
            "2 December.",
        },
    },
    "cancel": {
        "summary": "Cancel requests logged twice by mistake",
        "value": {
            "action": "cancel",
            "ids": ["5f0c6a8e-3b7d-4c1e-9a51-2b8f0d3e6c11"],
            "note": "Logged twice by the CRM import",
        },
    },
}


class BulkResult(BaseModel):
    id: uuid.UUID | None = Field(description="The request id; null when the entry was not one.")
    status: Literal[200, 404, 409, 422] = Field(
        description="200 done; 404 no such request; 409 not allowed in its status (closed "
        "already); 422 not a request id, or listed twice in another spelling."
    )
    request_status: RequestStatus | None = Field(
        default=None, description="The request's status after the call (200 and 409)."
    )
    detail: str | None = None


class BulkResults(BaseModel):
    results: list[BulkResult] = Field(description="One per submitted id, in the same order.")
