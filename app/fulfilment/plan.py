"""The fulfilment plan: a dry run of fulfilment against every data source, changing nothing.

``build_plan`` asks each ``sql`` and ``http`` source what fulfilment would do for the request's
type (the connectors' ``plan_*`` methods only read); ``task`` sources cannot be previewed and
are listed with what their consumer would be asked. A source that fails is marked ``error``
(with a detail that names no person) and the others are still planned. ``plan_sha256`` is the
hash of the plan without its time, so an approval can name exactly the plan it approves.

A rectification plan holds the subject's current values: it is for officers only and is never
logged or audited (the approval records ``counts`` and the hash only).
"""

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.errors import Conflict, NotFound
from app.core.time import iso_z
from app.data_sources import service as data_sources
from app.data_sources.connectors import (
    Connector,
    NotPreviewable,
    SourceError,
    SubjectIdentity,
    connector_for,
)
from app.enums import RequestStatus, RequestType
from app.fulfilment.steps import ALL_CHANNELS
from app.models import DataSource, DsrRequest

OPEN = frozenset(
    {RequestStatus.AWAITING_VERIFICATION, RequestStatus.IN_PROGRESS, RequestStatus.PAUSED}
)
# Not part of what is approved: the same data planned twice hashes the same.
VOLATILE = ("generated_at", "plan_sha256")

ERASURE_COUNTS = ("deleted", "anonymised", "nulled", "masked", "retained")


def _closed(dsr: DsrRequest) -> Conflict:
    return Conflict(
        f"The request is {dsr.status}: there is nothing left to fulfil, so no plan.",
        title="Request closed",
        extra={"current_status": dsr.status},
    )


def plan_sha256(plan: dict[str, Any]) -> str:
    """The sha256 of the plan's canonical JSON (sorted keys, no spaces), its time left out."""
    stable = {key: value for key, value in plan.items() if key not in VOLATILE}
    text = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _task_entry(source: DataSource, dsr: DsrRequest) -> dict[str, Any]:
    config = source.config or {}
    return {
        "source": source.name,
        "kind": "task",
        "status": "not_previewable",
        "detail": "Worked by a webhook consumer: it receives a task.created event and reports "
        "back; the service cannot look into its system beforehand.",
        "would_ask": {
            "request_type": dsr.type,
            "assignee": config.get("assignee_client_id"),
            "instructions": config.get("instructions"),
        },
    }


async def _source_plan(
    connector: Connector, dsr: DsrRequest, identity: SubjectIdentity
) -> dict[str, Any]:
    """What fulfilment would do in one source, for the request's type."""
    kind = dsr.type
    if kind == RequestType.ERASURE:
        erasure = await connector.plan_erasure(identity)
        tables = [asdict(table) for table in erasure.tables]
        return {
            "tables": tables,
            "retained": [
                {"category": kept.category, "reason": kept.reason, "tables": list(kept.tables)}
                for kept in erasure.retained
            ],
            "counts": {name: sum(table[name] for table in tables) for name in ERASURE_COUNTS},
        }
    if kind == RequestType.RECTIFICATION:
        changes = list(dsr.details.get("changes") or [])
        requested = {str(change.get("field")): change.get("requested") for change in changes}
        rectification = await connector.plan_rectification(identity, changes)
        return {
            "changes": [
                {
                    "field": change.field,
                    "table": change.table,
                    "rows": change.rows,
                    "current": change.current,
                    "requested": requested.get(change.field),
                }
                for change in rectification.changes
            ],
            "not_held": rectification.not_held,
            "counts": {
                "fields": len(rectification.changes),
                "rows": sum(change.rows for change in rectification.changes),
            },
        }
    if kind in (RequestType.RESTRICTION, RequestType.OBJECTION):
        restriction = await connector.plan_restriction(identity)
        return {
            "flagged": {
                "table": restriction.table,
                "rows": restriction.rows,
                "supported": restriction.supported,
            },
            "counts": {"flagged": restriction.rows},
        }
    access = await connector.plan_access(identity, provided_only=kind == RequestType.PORTABILITY)
    return {
        "records_by_table": access.tables,
        "records_by_category": access.categories,
        "counts": {"records": sum(access.tables.values())},
    }


def _suppression(dsr: DsrRequest) -> dict[str, Any] | None:
    """The channels fulfilment would put the subject on the suppression list for."""
    if dsr.type in (RequestType.ERASURE, RequestType.RESTRICTION):
        return {"channels": list(ALL_CHANNELS), "reason": dsr.type}
    if dsr.type == RequestType.OBJECTION and dsr.details.get("scope") == "direct_marketing":
        wanted = dsr.details.get("channels") or ALL_CHANNELS
        return {"channels": [c for c in ALL_CHANNELS if c in wanted], "reason": "objection"}
    return None


def _notes(dsr: DsrRequest) -> list[str]:
    if dsr.type != RequestType.OBJECTION:
        return []
    if dsr.details.get("scope") == "direct_marketing":
        return [
            "A direct marketing objection is absolute: fulfilment only suppresses the channels "
            "below; the sources are not changed."
        ]
    return [
        "Legitimate interests or profiling: the rows shown are flagged only if you uphold the "
        "objection when you fulfil; overriding it changes nothing in the sources."
    ]


def _totals(dsr: DsrRequest, sources: list[dict[str, Any]]) -> dict[str, int]:
    """Per action, the total over the sources planned (what an approval records)."""
    totals: dict[str, int] = {}
    for entry in sources:
        for name, value in (entry.get("counts") or {}).items():
            totals[name] = totals.get(name, 0) + int(value)
    if dsr.type in (RequestType.ACCESS, RequestType.PORTABILITY):
        totals.setdefault("records", 0)
    return totals


def comparable_counts(request_type: str, sources: list[dict[str, Any]]) -> dict[str, int]:
    """Row counts keyed ``source/table/action``, from a plan's sources: what the approval
    keeps to set beside what fulfilment then did (``actual_counts``)."""
    counts: dict[str, int] = {}
    for entry in sources:
        if entry.get("status") != "planned":
            continue
        source = entry["source"]
        if request_type == RequestType.ERASURE:
            for table in entry["tables"]:
                for action in ("deleted", "anonymised"):
                    if table[action]:
                        counts[f"{source}/{table['table']}/{action}"] = table[action]
        elif request_type == RequestType.RECTIFICATION:
            for change in entry["changes"]:
                counts[f"{source}/{change['table']}/{change['field']}"] = change["rows"]
        elif request_type in (RequestType.RESTRICTION, RequestType.OBJECTION):
            if entry["flagged"]["supported"]:
                counts[f"{source}/flagged"] = entry["flagged"]["rows"]
        elif entry["counts"]["records"]:
            # An export counts its records over every source together.
            counts["records"] = counts.get("records", 0) + entry["counts"]["records"]
    return counts


def actual_counts(request_type: str, result: dict[str, Any]) -> dict[str, int]:
    """What fulfilment did, in the keys of ``comparable_counts``."""
    counts: dict[str, int] = {}
    if request_type == RequestType.ERASURE:
        for item in result.get("sources") or []:
            for action, key in (("deleted", "deleted_rows"), ("anonymised", "anonymised_rows")):
                for table, rows in (item.get(key) or {}).items():
                    if rows:
                        counts[f"{item['source']}/{table}/{action}"] = int(rows)
        return counts
    if request_type == RequestType.RECTIFICATION:
        for item in result.get("applied") or []:
            counts[f"{item['source']}/{item['table']}/{item['field']}"] = int(item["rows"])
        return counts
    if request_type in (RequestType.RESTRICTION, RequestType.OBJECTION):
        # An overridden or a direct marketing objection flags nothing.
        for item in result.get("sources") or []:
            if item.get("supported", True):
                counts[f"{item['source']}/flagged"] = int(item.get("flagged_rows") or 0)
        return counts
    records = int(result.get("records") or 0)
    return {"records": records} if records else {}


async def _planned_source(
    source: DataSource, dsr: DsrRequest, identity: SubjectIdentity, settings: Settings
) -> dict[str, Any]:
    """One source's entry in the plan: planned, not previewable, or its error."""
    if source.kind == "task":
        return _task_entry(source, dsr)
    entry: dict[str, Any] = {"source": source.name, "kind": source.kind}
    connector: Connector | None = None
    try:
        connector = connector_for(source, settings, request_id=dsr.id)
        entry.update(status="planned", **await _source_plan(connector, dsr, identity))
    except NotPreviewable as exc:
        entry.update(status="not_previewable", detail=str(exc))
    except SourceError as exc:
        # The message names the source and the failure kind only (never a value).
        entry.update(status="error", detail=str(exc))
    finally:
        if connector is not None:
            await connector.close()
    return entry


async def plan_request(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    settings: Settings,
    request_id: uuid.UUID,
    now: datetime,
    check: Callable[[DsrRequest], None] | None = None,
) -> dict[str, Any]:
    """The plan of a request, read in a short transaction of its own: the sources are asked
    with no database transaction (SQLite's write lock, a PostgreSQL row lock) held.
    ``check`` may refuse the request as read before any source is asked."""
    async with sessionmaker() as session:
        dsr = await session.get(DsrRequest, request_id)
        if dsr is None:
            raise NotFound("No request with this id is visible to you.")
        if check is not None:
            check(dsr)
        sources = await data_sources.active_sources(session)
    return await build_plan(settings=settings, dsr=dsr, sources=sources, now=now)


async def build_plan(
    *, settings: Settings, dsr: DsrRequest, sources: list[DataSource], now: datetime
) -> dict[str, Any]:
    """Dry-run fulfilment of an open request against ``sources``; changes nothing."""
    if dsr.status not in OPEN:
        raise _closed(dsr)
    # The identities fulfilment searches by (built as service.identity_of builds them).
    identity = SubjectIdentity(
        email=dsr.subject_email,
        phone=dsr.subject_phone,
        customer_id=dsr.subject_customer_id,
        name=dsr.subject_name,
    )
    if not (identity.email or identity.phone or identity.customer_id):
        raise Conflict(
            "The request names no email, phone or customer id to find the subject by, so "
            "the sources cannot be searched; fulfil it by hand and record it with `complete`.",
            title="No identity to search by",
        )
    if dsr.type == RequestType.OBJECTION and dsr.details.get("scope") == "direct_marketing":
        sources = []  # suppression only: no source is read or changed
    # The sources are asked together: one slow or unreachable source costs its timeout once.
    entries = list(
        await asyncio.gather(
            *(_planned_source(source, dsr, identity, settings) for source in sources)
        )
    )
    plan: dict[str, Any] = {
        "request_id": str(dsr.id),
        "request_type": dsr.type,
        "generated_at": iso_z(now),
        "sources": entries,
        "counts": _totals(dsr, entries),
        "suppression": _suppression(dsr),
        "notes": _notes(dsr),
    }
    plan["plan_sha256"] = plan_sha256(plan)
    return plan
