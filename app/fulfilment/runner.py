"""The worker's side of fulfilment: one claimed job, run to its end.

The job reads the request, works through the data sources outside any transaction while
showing progress on the request, then writes every effect (exports, suppression, audit
entries, webhook events, tasks, completion) in one concluding transaction guarded by the
job's lease. A ``task`` source has no connector: the request waits (``waiting_for_tasks``)
and a ``finalise`` job completes it once every task is in.
"""

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.core.config import Settings
from app.core.logs import bound_request_id
from app.core.time import hours_in_words, iso_z, utcnow
from app.core.tracebacks import traceback_without_messages
from app.correspondence import service as correspondence
from app.data_sources import service as data_sources
from app.data_sources.connectors import Connector, RetainedKeys, SourceError, connector_for
from app.enums import FulfilmentStatus, JobStatus, RequestStatus, RequestType, TaskStatus
from app.exports import service as exports
from app.fulfilment import approval, effects, jobs, retained, steps
from app.fulfilment.service import identity_of
from app.models import DataSource, DsrRequest, FulfilmentTask
from app.register import service as register
from app.requests import audit, lifecycle
from app.suppression import service as suppression

logger = logging.getLogger("app.fulfilment")

EXPORT_COLLECTION = "Your download links come in a separate message from us."
PORTABILITY_NOTE = (
    "The personal data you provided to us, in a structured, commonly used and "
    "machine-readable format (UK GDPR Art. 20)."
)


class JobRun:
    """One claimed job on one worker."""

    def __init__(
        self,
        job: jobs.ClaimedJob,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        http: httpx.AsyncClient,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.job = job
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.http = http
        self.clock = clock
        self.progress_state: dict[str, Any] = {}
        self.categories: list[str] | None = None
        self.last_progress_write = 0.0
        # Task sources whose reports this (finalise) job completes.
        self.tasks_done = 0
        self.source_ids: dict[str, uuid.UUID] = {}
        # What an erasure leaves for later requests to find its kept records by.
        self.erasure_index: retained.ErasureIndex | None = None

    async def run(self) -> None:
        """Run the job to its end; failures are recorded on the request, never raised.

        Its log lines carry the id of the HTTP request that queued it (``trace_id``).
        """
        with bound_request_id(self.job.trace_id):
            logger.info(
                "fulfilment job %s (%s) started, attempt %d",
                self.job.id,
                self.job.phase,
                self.job.attempt,
            )
            await self._run_logged()
            logger.info("fulfilment job %s (%s) ended", self.job.id, self.job.phase)

    async def _run_logged(self) -> None:
        try:
            await self._run()
        except jobs.LeaseLost:
            logger.warning("fulfilment job %s was taken over by another worker", self.job.id)
        except SourceError as exc:
            await self._failed(str(exc), retryable=exc.retryable)
        except Exception as exc:  # one job must never take the worker down
            name = type(exc).__name__
            if _transient(exc):
                logger.warning(
                    "fulfilment job %s: service database unavailable (%s)", self.job.id, name
                )
                await self._failed(f"service database unavailable ({name})", retryable=True)
                return
            # A fault in our own code: retrying cannot mend it, so fail now and show where.
            logger.error(
                "fulfilment job %s failed with an unexpected %s (not retried):\n%s",
                self.job.id,
                name,
                traceback_without_messages(exc),
            )
            await self._failed(f"internal error ({name})", retryable=False)

    async def _run(self) -> None:
        job = self.job
        tasks: list[FulfilmentTask] = []
        async with self.sessionmaker.begin() as session:
            dsr = await session.get(DsrRequest, job.request_id, with_for_update=True)
            if dsr is None:
                await jobs.finish(session, job, status=JobStatus.DONE, now=self.clock())
                return
            if job.phase == "lift":
                snapshot = self._snapshot(dsr)
                sources = await data_sources.active_sources(session)
            elif dsr.status != RequestStatus.IN_PROGRESS:
                await self._abandon(session, dsr)
                return
            else:
                snapshot = self._snapshot(dsr)
                sources = await data_sources.active_sources(session)
                tasks = await _tasks(session, dsr.id) if job.phase == "finalise" else []
                self._start_progress(dsr, sources_total=len(sources), tasks_done=len(tasks))
                self._show(dsr, status=FulfilmentStatus.RUNNING, step="started")
            await jobs.hold(session, job, settings=self.settings, now=self.clock())
        self.categories = _register_categories(sources)
        self.source_ids = {source.name: source.id for source in sources}
        connectors = [
            connector_for(source, self.settings, request_id=job.request_id)
            for source in sources
            if source.kind != "task"
        ]
        try:
            if job.phase == "lift":
                result = await steps.restrict(snapshot, connectors, self.progress, restricted=False)
                await self._conclude_lift(result)
                return
            task_sources = [source for source in sources if source.kind == "task"]
            creates_tasks = job.phase == "run" and bool(task_sources)
            creates_tasks = (
                creates_tasks and snapshot.params.get("objection_decision") != "override"
            )
            outcome = await self._work(snapshot, connectors, tasks, defer=creates_tasks)
        finally:
            for connector in connectors:
                await connector.close()
        await self._conclude(outcome, task_sources if creates_tasks else [])

    def _snapshot(self, dsr: DsrRequest) -> steps.Snapshot:
        previous = (dsr.fulfilment or {}).get("result") or {}
        return steps.Snapshot(
            id=str(dsr.id),
            type=dsr.type,
            regulation=dsr.regulation,
            external_ref=dsr.external_ref,
            details=dict(dsr.details),
            identity=identity_of(dsr),
            params=self.job.params or dict((dsr.fulfilment or {}).get("params") or {}),
            previous_result=dict(previous),
        )

    async def _work(
        self,
        snapshot: steps.Snapshot,
        connectors: list[Connector],
        tasks: list[FulfilmentTask],
        *,
        defer: bool,
    ) -> steps.Outcome:
        """The source work for the request's type. ``defer``: tasks are still to come."""
        kind = snapshot.type
        task_results = [effects.task_summary(task) for task in tasks]
        if kind in (RequestType.ACCESS, RequestType.PORTABILITY):
            if defer:
                return steps.Outcome(result={}, summary="")
            return await self._export(snapshot, connectors, tasks)
        if kind == RequestType.ERASURE:
            index = self.erasure_index = retained.ErasureIndex(
                sessionmaker=self.sessionmaker,
                settings=self.settings,
                job=self.job,
                request_id=uuid.UUID(snapshot.id),
                identity=snapshot.identity,
                clock=self.clock,
            )
            result = snapshot.previous_result or {}
            if not result:
                erased = await steps.erase(
                    snapshot,
                    connectors,
                    self.progress,
                    recorder_for=lambda name: index.for_source(self.source_ids[name]),
                )
                # How many identities the erased rows held (their emails and phones are suppressed).
                result = {**erased.result, "identities_found": index.counts()}
            if defer:
                return steps.Outcome(result=result, summary="")
            kept = list(result.get("retained", []))
            for task, summary in zip(tasks, task_results, strict=True):
                kept += [
                    {**item, "source": summary["source"]}
                    for item in (task.result or {}).get("retained", [])
                ]
            return steps.erasure_outcome({**result, "retained": kept, "tasks": task_results})
        if kind == RequestType.RECTIFICATION:
            if snapshot.previous_result:
                outcome = steps.rectification_outcome(snapshot.previous_result)
                outcome.audit = []  # written when the sources were changed
            else:
                outcome = await steps.rectify(snapshot, connectors, self.progress)
            outcome.result = {**outcome.result, "tasks": task_results}
            return outcome
        if kind == RequestType.RESTRICTION:
            result = snapshot.previous_result or await steps.restrict(
                snapshot, connectors, self.progress
            )
            return steps.restriction_outcome({**result, "tasks": task_results})
        # Objection.
        if snapshot.details.get("scope") == "direct_marketing":
            outcome = steps.direct_marketing_outcome(snapshot)
        elif snapshot.params.get("objection_decision") == "override":
            return steps.objection_overridden_outcome(snapshot)
        else:
            result = snapshot.previous_result or await steps.restrict(
                snapshot, connectors, self.progress
            )
            outcome = steps.objection_upheld_outcome(snapshot, result)
        outcome.result = {**outcome.result, "tasks": task_results}
        return outcome

    async def _export(
        self, snapshot: steps.Snapshot, connectors: list[Connector], tasks: list[FulfilmentTask]
    ) -> steps.Outcome:
        portability = snapshot.type == RequestType.PORTABILITY
        formats = list(snapshot.details.get("formats") or ["json", "csv"]) if portability else []
        transmit_to = snapshot.details.get("transmit_to") if portability else None
        wanted = sorted(set(formats) | ({"json"} if transmit_to else set())) or ["json", "csv"]
        header: dict[str, Any] = {
            "export": {
                "request_id": snapshot.id,
                "request_type": snapshot.type,
                "regulation": snapshot.regulation,
                "reference": snapshot.external_ref,
                "generated_at": iso_z(self.clock()),
                "sources": [connector.name for connector in connectors]
                + [effects.task_summary(task)["source"] for task in tasks],
            }
        }
        # The subject's correspondence about this request, where the register says so.
        thread = [] if portability else await self._correspondence(snapshot)
        if portability:
            header["export"]["note"] = PORTABILITY_NOTE
        else:
            categories = self.categories
            if thread and categories is not None:
                categories = [*categories, correspondence.CORRESPONDENCE_CATEGORY]
            header["supplementary_information"] = register.supplementary_information(
                register.load_register(self.settings),
                categories=categories,
                regulation=snapshot.regulation,
            )
        kept_summary, kept_keys = await self._kept_after_erasure(snapshot)
        if kept_summary:
            # Records kept for a legal obligation, and why (Art. 15: they are still disclosed).
            header["retained_after_erasure"] = kept_summary
        task_batches = [
            batch
            for task in tasks
            for batch in steps.task_record_batches(
                effects.task_summary(task)["source"], effects.task_records(task, self.settings)
            )
        ]
        if thread:
            task_batches.append(
                steps.correspondence_batch(thread, columns=correspondence.PACK_COLUMNS)
            )
        files = await steps.build_export(
            snapshot,
            connectors,
            self.progress,
            directory=exports.export_directory(self.settings, uuid.UUID(snapshot.id)),
            formats=wanted,
            header=header,
            provided_only=portability,
            task_batches=task_batches,
            retained=kept_keys,
        )
        result: dict[str, Any] = {
            "records": self.progress_state.get("records", 0),
            "sources": header["export"]["sources"],
        }
        if kept_summary:
            result["retained_after_erasure"] = kept_summary
        if tasks:
            result["tasks"] = [effects.task_summary(task) for task in tasks]
        summary = (
            "Your personal data is ready to download. We sent you the download links in a "
            "separate message; they are personal to you and expire after "
            f"{hours_in_words(self.settings.export_ttl_hours)}."
        )
        if transmit_to:
            await self.progress(step="transmitting to the new controller")
            transmission = await steps.transmit(
                self.http,
                files["json"].path,
                url=str(transmit_to),
                settings=self.settings,
                request_id=snapshot.id,
            )
            result["transmission"] = transmission
            if transmission["status"] == "delivered":
                summary += " We also sent it directly to the organisation you named."
            else:
                summary += (
                    " We could not send it directly to the organisation you named; "
                    "please pass the download on to them yourself."
                )
        if "json" in files and portability and "json" not in formats:
            # Built only to transmit it: the subject asked for other formats.
            files.pop("json").path.unlink(missing_ok=True)
        outcome = steps.Outcome(result=result, summary=summary, export_files=files)
        if "transmission" in result:
            # The receiving controller's address is not recorded: only how it went.
            outcome.audit.append(("portability.transmitted", result["transmission"]))
        return outcome

    async def _correspondence(self, snapshot: steps.Snapshot) -> list[tuple[Any, ...]]:
        async with self.sessionmaker() as session:
            return await correspondence.pack_thread(
                session, settings=self.settings, request_id=uuid.UUID(snapshot.id)
            )

    async def _kept_after_erasure(
        self, snapshot: steps.Snapshot
    ) -> tuple[list[dict[str, Any]], dict[str, RetainedKeys]]:
        """What earlier erasures of this person kept and why, and each source's kept keys."""
        async with self.sessionmaker() as session:
            erasures = await retained.earlier_erasures(
                session, settings=self.settings, identity=snapshot.identity
            )
        if not erasures:
            return [], {}
        ids = [erasure.id for erasure in erasures]
        keys: dict[str, RetainedKeys] = {
            name: retained.KeysInIndex(self.sessionmaker, source_id, ids)
            for name, source_id in self.source_ids.items()
        }
        return retained.retained_summary(erasures), keys

    # ------------------------------------------------------------ progress and endings

    def _start_progress(self, dsr: DsrRequest, *, sources_total: int, tasks_done: int) -> None:
        """Counters at the start: a finalise job goes on from what the first run did."""
        previous = (dsr.fulfilment or {}).get("progress") or {}
        done = previous.get("sources_done") if self.job.phase == "finalise" else 0
        self.progress_state.update(
            sources_done=done if isinstance(done, int) else 0, sources_total=sources_total
        )
        self.tasks_done = tasks_done

    async def progress(self, **fields: Any) -> None:
        """Show progress on the request (at most about once a second) and keep the lease."""
        self.progress_state.update(fields)
        now = self.clock()
        moment = now.timestamp()
        if "step" not in fields and moment - self.last_progress_write < 1.0:
            return
        self.last_progress_write = moment
        async with self.sessionmaker.begin() as session:
            await jobs.hold(session, self.job, settings=self.settings, now=now)
            dsr = await session.get(DsrRequest, self.job.request_id)
            if dsr is not None and self.job.phase != "lift":
                self._show(dsr, status=FulfilmentStatus.RUNNING)

    def _show(
        self,
        dsr: DsrRequest,
        *,
        status: FulfilmentStatus,
        step: str | None = None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        if step is not None:
            self.progress_state["step"] = step
        state = dict(dsr.fulfilment or {})
        state["progress"] = dict(self.progress_state)
        if result is not None:
            state["result"] = result
        state["error"] = error
        if status == FulfilmentStatus.RUNNING and "started_at" not in state:
            state["started_at"] = iso_z(self.clock())
        if status in (FulfilmentStatus.SUCCEEDED, FulfilmentStatus.FAILED):
            state["finished_at"] = iso_z(self.clock())
        dsr.fulfilment_status = status.value
        dsr.fulfilment = state  # a new dict, so the JSON column is seen as changed

    async def _abandon(self, session: AsyncSession, dsr: DsrRequest) -> None:
        """The request was closed (cancelled, rejected) before the work started."""
        await jobs.finish(session, self.job, status=JobStatus.DONE, now=self.clock())
        self._show(
            dsr, status=FulfilmentStatus.FAILED, step="abandoned", error=f"request {dsr.status}"
        )
        audit.record(
            session,
            dsr=dsr,
            settings=self.settings,
            now=self.clock(),
            actor="worker",
            audit_type="fulfilment.abandoned",
            audit_data={"status": dsr.status},
        )

    async def _failed(self, message: str, *, retryable: bool) -> None:
        now = self.clock()
        try:
            async with self.sessionmaker.begin() as session:
                dsr = await session.get(DsrRequest, self.job.request_id, with_for_update=True)
                if retryable and await jobs.retry_later(
                    session, self.job, settings=self.settings, now=now, error=message[:500]
                ):
                    if dsr is not None and self.job.phase != "lift":
                        self._show(
                            dsr,
                            status=FulfilmentStatus.QUEUED,
                            step="waiting to retry",
                            error=message,
                        )
                    return
                await jobs.finish(
                    session, self.job, status=JobStatus.FAILED, now=now, error=message
                )
                if dsr is None:
                    return
                if self.job.phase != "lift":
                    self._show(dsr, status=FulfilmentStatus.FAILED, step="failed", error=message)
                audit.record(
                    session,
                    dsr=dsr,
                    settings=self.settings,
                    now=now,
                    actor="worker",
                    audit_type="fulfilment.failed",
                    audit_data={"phase": self.job.phase, "error": message},
                    # The error text stays in the audit trail: a source's message may quote data.
                    webhook_event="fulfilment.failed",
                    webhook_extra={"fulfilment": {"phase": self.job.phase}},
                )
        except jobs.LeaseLost:
            logger.warning("fulfilment job %s was taken over by another worker", self.job.id)

    async def _conclude(self, outcome: steps.Outcome, task_sources: list[DataSource]) -> None:
        now = self.clock()
        settings = self.settings
        async with self.sessionmaker.begin() as session:
            await jobs.finish(session, self.job, status=JobStatus.DONE, now=now)
            dsr = await session.get(DsrRequest, self.job.request_id, with_for_update=True)
            assert dsr is not None  # requests are never deleted
            for audit_type, data in outcome.audit:
                audit.record(
                    session, dsr=dsr, settings=settings, now=now, actor="worker",
                    audit_type=audit_type, audit_data=data,
                )  # fmt: skip
            if self.erasure_index is not None and outcome.result.get("retained"):
                # Kept by an http or task source too: its reason is found by identity later.
                await retained.keep_identities(
                    session,
                    request_id=dsr.id,
                    identities=self.erasure_index.identities,
                    now=now,
                )
            if task_sources:
                await effects.create_tasks(session, dsr, task_sources, settings=settings, now=now)
                self._show(
                    dsr,
                    status=FulfilmentStatus.WAITING_FOR_TASKS,
                    step="waiting for tasks",
                    result=outcome.result,
                )
                dsr.updated_at = now
                return
            result = dict(outcome.result)
            if outcome.export_files:
                result["exports"] = await effects.publish_exports(
                    session, dsr, outcome.export_files, settings, now
                )
            found = outcome.result.get("identities_found") or {}
            contactable = dsr.subject_email or dsr.subject_phone
            # Addresses found in erased rows were suppressed as the erasure went.
            if outcome.suppress_channels and (
                contactable or found.get("email") or found.get("phone")
            ):
                if contactable:
                    await suppression.suppress(
                        session,
                        settings=settings,
                        email=dsr.subject_email,
                        phone=dsr.subject_phone,
                        channels=outcome.suppress_channels,
                        reason=outcome.suppress_reason,
                        request_id=dsr.id,
                        now=now,
                    )
                result["suppressed_channels"] = outcome.suppress_channels
                outcome.webhooks.append(
                    ("subject.suppressed", {"suppression": {"channels": outcome.suppress_channels}})
                )
            if outcome.restricted:
                dsr.restricted_at = now
            for event_type, extra in outcome.webhooks:
                audit.record(
                    session, dsr=dsr, settings=settings, now=now, actor="worker",
                    audit_type=event_type, audit_data=extra, webhook_event=event_type,
                    webhook_extra=extra,
                )  # fmt: skip
            # Every source the run worked through, the task sources included.
            self.progress_state["sources_done"] = (
                int(self.progress_state.get("sources_done", 0)) + self.tasks_done
            )
            # Beside the approved plan's counts: fulfilment acted on the data as it is now.
            result = approval.compare_with_approval(dsr, result)
            self._show(dsr, status=FulfilmentStatus.SUCCEEDED, step="done", result=result)
            if dsr.status == RequestStatus.IN_PROGRESS:
                await lifecycle.complete(
                    session,
                    settings=settings,
                    dsr=dsr,
                    summary=outcome.summary,
                    actor=str((dsr.fulfilment or {}).get("requested_by") or self.job.actor),
                    now=now,
                    how_to_collect=EXPORT_COLLECTION if outcome.export_files else "",
                )
            else:
                dsr.updated_at = now

    async def _conclude_lift(self, result: dict[str, Any]) -> None:
        now = self.clock()
        async with self.sessionmaker.begin() as session:
            await jobs.finish(session, self.job, status=JobStatus.DONE, now=now)
            dsr = await session.get(DsrRequest, self.job.request_id, with_for_update=True)
            assert dsr is not None
            lifecycle.record_change(
                session,
                dsr,
                settings=self.settings,
                now=now,
                actor="worker",
                event="subject.restriction_lifted",
                data={"sources": result.get("sources", [])},
                webhook_extra={"restriction": {"restricted": False}},
            )


async def _tasks(session: AsyncSession, request_id: uuid.UUID) -> list[FulfilmentTask]:
    rows = await session.execute(
        select(FulfilmentTask)
        .where(
            col(FulfilmentTask.request_id) == request_id,
            col(FulfilmentTask.status) == TaskStatus.DONE,
        )
        .order_by(col(FulfilmentTask.created_at), col(FulfilmentTask.id))
    )
    return list(rows.scalars())


def _transient(exc: Exception) -> bool:
    """The service's own database failed to answer: the job may succeed when it is back."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout | OSError | TimeoutError)


def _register_categories(sources: list[DataSource]) -> list[str] | None:
    """The data categories the sources' maps declare; None (all) when a source has no map."""
    names: set[str] = set()
    for source in sources:
        dataset_map = source.config.get("dataset_map")
        if source.kind != "sql" or not isinstance(dataset_map, dict):
            return None
        names.update(dataset_map.get("categories") or {})
    return sorted(names)
