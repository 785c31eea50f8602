"""What fulfilment does in the data sources, per request type (runs in the worker).

Each step returns an ``Outcome``: what the request shows (``result``, never the subject's
data), what the subject is told (``summary``), and the effects to write in the concluding
transaction (audit entries, webhook events, suppression, exports).
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.core import ssrf
from app.core.config import Settings
from app.core.errors import AppError
from app.data_sources.connectors import (
    ColumnInfo,
    Connector,
    ErasureRecorder,
    RecordBatch,
    RetainedKeys,
    SourceError,
    SubjectIdentity,
)
from app.data_sources.connectors.base import EncodedTable, ExportingConnector
from app.exports.writer import ExportFile, write_exports

logger = logging.getLogger("app.fulfilment")

Progress = Callable[..., Awaitable[None]]
TRANSMIT_ATTEMPTS = 3


@dataclass
class Snapshot:
    """The request as the job read it at the start (the worker holds no transaction)."""

    id: str
    type: str
    regulation: str
    external_ref: str | None
    details: dict[str, Any]
    identity: SubjectIdentity
    params: dict[str, Any]
    previous_result: dict[str, Any]


@dataclass
class Outcome:
    result: dict[str, Any]
    summary: str
    audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    webhooks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    suppress_channels: list[str] = field(default_factory=list)
    suppress_reason: str = "manual"
    export_files: dict[str, ExportFile] = field(default_factory=dict)
    restricted: bool | None = None


ALL_CHANNELS = ["email", "phone", "post", "sms"]


# ---------------------------------------------------------------- erasure


async def erase(
    snapshot: Snapshot,
    connectors: list[Connector],
    progress: Progress,
    *,
    recorder_for: Callable[[str], ErasureRecorder] | None = None,
) -> Outcome:
    """Erase in every source; ``recorder_for(source name)`` indexes what each one keeps."""
    sources: list[dict[str, Any]] = []
    retained: list[dict[str, Any]] = []
    for index, connector in enumerate(connectors):
        await progress(step=f"erasing in {connector.name}", sources_done=index)
        recorder = recorder_for(connector.name) if recorder_for is not None else None
        outcome = await connector.erase(snapshot.identity, recorder=recorder)
        sources.append(
            {
                "source": outcome.source,
                "deleted_rows": outcome.deleted_rows,
                "anonymised_rows": outcome.anonymised_rows,
            }
        )
        retained += [
            {
                "source": outcome.source,
                "category": kept.category,
                "reason": kept.reason,
                "tables": list(kept.tables),
            }
            for kept in outcome.retained
        ]
    await progress(sources_done=len(connectors))
    result = {"sources": sources, "retained": retained}
    return erasure_outcome(result)


def erasure_outcome(result: dict[str, Any]) -> Outcome:
    retained = result.get("retained", [])
    summary = "We have erased your personal data from our systems."
    if retained:
        kept = "; ".join(f"{item['category']}: {item['reason']}" for item in retained)
        summary += f" The law requires us to keep some records, which we have kept: {kept}."
    summary += " We have also told the organisations we shared your data with, where required."
    extra = {
        "erasure": {
            "sources": [item["source"] for item in result.get("sources", [])],
            "retained_categories": sorted({item["category"] for item in retained}),
        }
    }
    return Outcome(
        result=result,
        summary=summary,
        webhooks=[("subject.erased", extra)],
        suppress_channels=ALL_CHANNELS,
        suppress_reason="erasure",
    )


# ---------------------------------------------------------------- rectification


async def rectify(snapshot: Snapshot, connectors: list[Connector], progress: Progress) -> Outcome:
    changes = list(snapshot.details.get("changes") or [])
    applied: list[dict[str, Any]] = []
    audit_changes: list[dict[str, Any]] = []
    held: set[str] = set()
    for index, connector in enumerate(connectors):
        await progress(step=f"rectifying in {connector.name}", sources_done=index)
        outcome = await connector.rectify(snapshot.identity, changes)
        for change in outcome.applied:
            held.add(change.field)
            applied.append(
                {
                    "source": outcome.source,
                    "field": change.field,
                    "table": change.table,
                    "rows": change.rows,
                }
            )
            # Before and after belong in the audit trail only.
            audit_changes.append(
                {
                    "source": outcome.source,
                    "field": change.field,
                    "table": change.table,
                    "rows": change.rows,
                    "before": change.before,
                    "after": change.after,
                }
            )
    await progress(sources_done=len(connectors))
    result = {
        "applied": applied,
        "not_held": [c["field"] for c in changes if c["field"] not in held],
    }
    return rectification_outcome(result, audit_changes)


def rectification_outcome(
    result: dict[str, Any], audit_changes: list[dict[str, Any]] | None = None
) -> Outcome:
    fields = sorted({item["field"] for item in result.get("applied", [])})
    summary = "We have corrected your personal data as you asked."
    if result.get("not_held"):
        summary += (
            " We do not hold some of the information you asked us to correct: "
            + ", ".join(result["not_held"])
            + "."
        )
    return Outcome(
        result=result,
        summary=summary,
        audit=[("subject.rectification_applied", {"changes": audit_changes})]
        if audit_changes
        else [],
        webhooks=[("subject.rectified", {"rectification": {"fields": fields}})],
    )


# ---------------------------------------------------------------- restriction and objection


async def restrict(
    snapshot: Snapshot, connectors: list[Connector], progress: Progress, *, restricted: bool = True
) -> dict[str, Any]:
    sources = []
    for index, connector in enumerate(connectors):
        await progress(step=f"flagging in {connector.name}", sources_done=index)
        outcome = await connector.restrict(snapshot.identity, restricted=restricted)
        sources.append(
            {
                "source": outcome.source,
                "flagged_rows": outcome.flagged_rows,
                "supported": outcome.supported,
            }
        )
    await progress(sources_done=len(connectors))
    return {"sources": sources}


def restriction_outcome(result: dict[str, Any]) -> Outcome:
    unsupported = [item["source"] for item in result.get("sources", []) if not item["supported"]]
    summary = (
        "We have restricted the processing of your personal data: we will store it but not "
        "otherwise use it without your consent. We will tell you before the restriction is lifted."
    )
    if unsupported:
        result = {**result, "needs_manual_action": unsupported}
    return Outcome(
        result=result,
        summary=summary,
        webhooks=[("subject.restricted", {"restriction": {"restricted": True}})],
        suppress_channels=ALL_CHANNELS,
        suppress_reason="restriction",
        restricted=True,
    )


def direct_marketing_outcome(snapshot: Snapshot) -> Outcome:
    channels = [c for c in ALL_CHANNELS if c in (snapshot.details.get("channels") or ALL_CHANNELS)]
    return Outcome(
        result={"scope": "direct_marketing", "suppressed_channels": channels},
        summary="We have stopped using your personal data for direct marketing ("
        + ", ".join(channels)
        + "), as the law requires.",
        suppress_channels=channels,
        suppress_reason="objection",
    )


def objection_overridden_outcome(snapshot: Snapshot) -> Outcome:
    grounds = str(snapshot.params.get("grounds") or "")
    scope = snapshot.details.get("scope")
    return Outcome(
        result={"scope": scope, "decision": "override"},
        summary="We have considered your objection. We will continue the processing because we "
        f"have compelling legitimate grounds which override your interests: {grounds}",
        audit=[("objection.overridden", {"scope": scope, "grounds": grounds})],
    )


def objection_upheld_outcome(snapshot: Snapshot, result: dict[str, Any]) -> Outcome:
    scope = snapshot.details.get("scope")
    return Outcome(
        result={**result, "scope": scope, "decision": "uphold"},
        summary="We have upheld your objection and stopped the processing you objected to.",
        audit=[("objection.upheld", {"scope": scope})],
        webhooks=[("subject.restricted", {"restriction": {"restricted": True, "scope": scope}})],
        restricted=True,
    )


# ---------------------------------------------------------------- access and portability


async def chained(
    connectors: list[Connector],
    identity: SubjectIdentity,
    *,
    provided_only: bool,
    extra: list[RecordBatch],
    progress: Progress,
    retained: Mapping[str, RetainedKeys] | None = None,
) -> AsyncIterator[RecordBatch | EncodedTable]:
    """Every source's records in turn, then the task results.

    Big tables come pre-encoded where the connector can (``ExportingConnector``: PostgreSQL
    writes them itself). ``retained`` maps a source name to the keys of the rows earlier
    erasures of the subject kept there.
    """
    for index, connector in enumerate(connectors):
        await progress(step=f"collecting from {connector.name}", sources_done=index)
        kept = (retained or {}).get(connector.name)
        items: AsyncIterator[RecordBatch | EncodedTable]
        if isinstance(connector, ExportingConnector):
            items = connector.collect_for_export(
                identity, provided_only=provided_only, retained=kept
            )
        else:
            items = connector.collect(identity, provided_only=provided_only, retained=kept)
        try:
            async for item in items:
                yield item
        finally:
            # A failed export ends the source's stream (and its transaction) at once.
            close = getattr(items, "aclose", None)
            if close is not None:
                await close()
    await progress(sources_done=len(connectors))
    for batch in extra:
        yield batch


async def build_export(
    snapshot: Snapshot,
    connectors: list[Connector],
    progress: Progress,
    *,
    directory: Path,
    formats: list[str],
    header: dict[str, Any],
    provided_only: bool,
    task_batches: list[RecordBatch],
    retained: Mapping[str, RetainedKeys] | None = None,
) -> dict[str, ExportFile]:
    async def written(records: int) -> None:
        await progress(records=records)

    return await write_exports(
        chained(
            connectors,
            snapshot.identity,
            provided_only=provided_only,
            extra=task_batches,
            progress=progress,
            retained=retained,
        ),
        directory=directory,
        formats=formats,
        header=header,
        on_progress=written,
    )


def task_record_batches(source: str, records: list[dict[str, Any]]) -> list[RecordBatch]:
    """Records a task consumer posted back, as batches (one per run of alike records)."""
    batches: list[RecordBatch] = []
    for record in records:
        data = record.get("data") or {}
        category = str(record.get("category") or "other")
        provided = bool(record.get("provided_by_subject", False))
        columns = (
            ColumnInfo("record_id", category, provided),
            *(ColumnInfo(str(name), category, provided) for name in data),
        )
        row = (record.get("record_id"), *data.values())
        table = str(record.get("table") or "records")
        last = batches[-1] if batches else None
        if last is not None and last.table == table and last.columns == columns:
            last.rows.append(row)
        else:
            batches.append(RecordBatch(source, table, columns, 0, [row]))
    return batches


def correspondence_batch(rows: list[tuple[Any, ...]], *, columns: tuple[str, ...]) -> RecordBatch:
    """The request's own correspondence, as records of the ``correspondence`` category."""
    described = tuple(ColumnInfo(name, "correspondence", False) for name in columns)
    return RecordBatch("privacy_team", "correspondence", described, 0, rows)


async def transmit(
    http: httpx.AsyncClient, path: Path, *, url: str, settings: Settings, request_id: str
) -> dict[str, Any]:
    """POST the JSON pack to another controller (Art. 20(2)), retried; never logs the URL."""
    try:
        await ssrf.ensure_deliverable_url(
            url,
            allow_private=settings.allow_private_webhooks,
            require_https=settings.env == "production",
        )
    except AppError as exc:
        raise SourceError(f"transmit_to refused: {exc.detail}", retryable=False) from None
    last_error = ""
    for attempt in range(1, TRANSMIT_ATTEMPTS + 1):
        try:
            response = await http.post(
                url,
                content=_chunks(path),
                headers={"Content-Type": "application/json", "X-DSR-Request-Id": request_id},
                timeout=settings.source_timeout,
            )
            if response.is_success:
                return {
                    "status": "delivered",
                    "status_code": response.status_code,
                    "attempts": attempt,
                }
            last_error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            if ssrf.refused_by_policy(exc):
                # The name now resolves somewhere we may not send personal data: never retry.
                raise SourceError(
                    "transmit_to refused: the destination address is not allowed",
                    retryable=False,
                ) from None
            last_error = type(exc).__name__
        if attempt < TRANSMIT_ATTEMPTS:
            await asyncio.sleep(2 ** (attempt - 1))
    logger.warning(
        "portability transmission failed after %d attempts: %s", TRANSMIT_ATTEMPTS, last_error
    )
    return {"status": "failed", "error": last_error, "attempts": TRANSMIT_ATTEMPTS}


async def _chunks(path: Path, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk
