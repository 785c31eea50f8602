"""The time source and the one way timestamps are written into payloads."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_z(moment: datetime) -> str:
    """ISO 8601 with ``Z`` for UTC, as webhook payloads and fulfilment state carry it."""
    return moment.isoformat().replace("+00:00", "Z")


def hours_in_words(hours: int) -> str:
    """A lifetime as a person reads it: "7 days", "1 day", "36 hours", "1 hour"."""
    if hours % 24 == 0:
        days = hours // 24
        return f"{days} day" if days == 1 else f"{days} days"
    return f"{hours} hour" if hours == 1 else f"{hours} hours"
