"""The webhook event catalogue and subscription pattern matching."""

from fnmatch import fnmatchcase

EVENT_TYPES: dict[str, str] = {
    "request.received": "A request was logged.",
    "request.verification_requested": "The subject was asked to prove their identity.",
    "request.verified": "The subject's identity was confirmed; the clock is running.",
    "request.verification_failed": "An identity check failed; the request keeps waiting.",
    "request.paused": "The clock was stopped (clarification or fee).",
    "request.resumed": "The clock was restarted.",
    "request.extended": "The deadline was extended by two months.",
    "request.due_soon": "The due date is near (DSR_DUE_SOON_DAYS).",
    "request.overdue": "The due date passed without an answer.",
    "request.completed": "The request was answered.",
    "request.rejected": "The request was refused.",
    "request.cancelled": "The request was withdrawn.",
    "fulfilment.failed": "Fulfilment failed for good (retries used up, or not retryable).",
    "export.ready": "An export is ready to download.",
    "task.created": "A fulfilment task awaits a system the service cannot reach.",
    "subject.erased": "The subject's data was erased.",
    "subject.rectified": "The subject's data was corrected.",
    "subject.restricted": "Processing of the subject's data was restricted.",
    "subject.restriction_lifted": "A restriction ended; the subject was told beforehand.",
    "subject.suppressed": "The subject was added to the suppression list.",
    "webhook.endpoint_disabled": "An endpoint was disabled after failing (admins only).",
}

# Events about the service itself, not a request: only admins' endpoints receive them.
ADMIN_EVENT_TYPES = frozenset({"webhook.endpoint_disabled"})


def is_valid_pattern(pattern: str) -> bool:
    """A known event type, ``*``, or a ``prefix.*`` wildcard matching at least one type."""
    if pattern in EVENT_TYPES or pattern == "*":
        return True
    return pattern.endswith(".*") and any(fnmatchcase(event, pattern) for event in EVENT_TYPES)


def matches(patterns: list[str], event_type: str) -> bool:
    return any(pattern == event_type or fnmatchcase(event_type, pattern) for pattern in patterns)
