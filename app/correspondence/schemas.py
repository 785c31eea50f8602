"""The correspondence API's models: a message to the subject, their reply, and the thread."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from app.core.schemas import StrictModel, TextAwareDatetime


class OutboundKind(StrEnum):
    """``clarification`` asks the subject something and stops the clock; ``information``
    only tells them something."""

    CLARIFICATION = "clarification"
    INFORMATION = "information"


class MessageChannel(StrEnum):
    EMAIL = "email"
    POST = "post"


class MessageCreate(StrictModel):
    kind: OutboundKind
    text: str = Field(
        min_length=1,
        max_length=5000,
        description="Your words to the subject; the service wraps them with the request's "
        "reference and the controller's name.",
    )
    channel: MessageChannel = Field(
        default=MessageChannel.EMAIL,
        description="`email` (default): the service mails it. `post`: you sent it yourself "
        "by post (or by hand); it is recorded, and a clarification still stops the clock.",
    )


class ReplyCreate(StrictModel):
    text: str = Field(
        min_length=1, max_length=20000, description="The subject's answer, as they wrote it."
    )
    received_at: TextAwareDatetime = Field(
        description="When the answer reached you: not in the future, not before the "
        "clarification it answers was sent. A clarification pause ends on this day.",
        examples=["2026-12-09T09:30:00Z"],
    )


class Delivery(BaseModel):
    """How the mail carrying an outbound message fared."""

    status: str = Field(description="`queued`, `sent` or `failed`.")
    sent_at: datetime | None = None
    attempts: int = 0


class MessagePublic(BaseModel):
    id: uuid.UUID
    direction: str = Field(description="`outbound` (to the subject) or `inbound` (from them).")
    kind: str = Field(description="`clarification`, `information` or `reply`.")
    channel: str = Field(description="`email` or `post`.")
    text: str | None = Field(
        description="The message as written (null only if it can no longer be decrypted)."
    )
    author: str | None = Field(
        description="The client that sent it (outbound); null for the subject's replies."
    )
    recorded_by: str = Field(description="The client that wrote or recorded it.")
    created_at: datetime
    received_at: datetime | None = Field(description="When a reply reached you (inbound).")
    delivery: Delivery | None = Field(description="Outbound only.")


CLARIFICATION_TEXT = (
    "Your request mentions 'my old account'. Which email address did you use for it, "
    "and roughly when did you close it?"
)

MESSAGE_EXAMPLES: dict[str, Any] = {
    "clarification": {
        "summary": "Ask the subject a question (stops the clock)",
        "value": {"kind": "clarification", "text": CLARIFICATION_TEXT},
    },
    "information": {
        "summary": "Tell the subject something",
        "value": {
            "kind": "information",
            "text": "We have started searching our order archive; this can take a week.",
        },
    },
    "by_post": {
        "summary": "Record a letter you posted yourself",
        "value": {"kind": "clarification", "text": CLARIFICATION_TEXT, "channel": "post"},
    },
}

REPLY_EXAMPLES: dict[str, Any] = {
    "reply": {
        "summary": "The subject's answer, received by email",
        "value": {
            "text": "It was my work address; I closed the account in spring 2024.",
            "received_at": "2026-12-09T09:30:00Z",
        },
    }
}
