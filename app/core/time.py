"""The time source and the one way timestamps are written into payloads."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_z(moment: datetime) -> str:
    """ISO 8601 with ``Z`` for UTC, as webhook payloads and fulfilment state carry it."""
    return moment.isoformat().replace("+00:00", "Z")
