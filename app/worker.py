"""The background worker: outbox fan-out, webhook delivery, mail, fulfilment jobs and sweeps.

Runs as ``dsr worker`` (any number of processes against PostgreSQL) or, with the embedded
SQLite default, inside the API process. Every step is its own short transaction.
"""

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import ssrf
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.time import utcnow
from app.correspondence import delivery as correspondence_delivery
from app.exports import orphans
from app.exports import service as exports
from app.fulfilment import jobs, runner
from app.mail import sender
from app.metrics.instruments import FULFILMENT_JOB_DURATION, MAIL_MESSAGES, WEBHOOK_DELIVERIES
from app.metrics.server import start_metrics_server
from app.reports import alerts
from app.requests import sweeps
from app.verification import reminders
from app.webhooks import delivery

logger = logging.getLogger("app.worker")


@dataclass
class PassStats:
    fanned_out: int = 0
    attempted: int = 0
    succeeded: int = 0
    swept: int = 0
    mail_attempted: int = 0
    mail_sent: int = 0
    jobs_started: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.fanned_out or self.attempted or self.mail_attempted or self.jobs_started)


@dataclass
class Worker:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient = field(init=False)
    last_sweep: float = field(default=0.0, init=False)
    last_orphan_sweep: float | None = field(default=None, init=False)
    # Fulfilment jobs run beside delivery, so a long export does not hold up webhooks.
    jobs: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    max_jobs: int = 2

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(
            timeout=self.settings.webhook_timeout,
            follow_redirects=False,  # a 3xx is a failure, and must not bounce us elsewhere
            # Webhooks and portability transfers connect only to addresses the policy allows.
            transport=ssrf.GuardedTransport(
                allow_private=self.settings.allow_private_webhooks,
                limits=httpx.Limits(max_connections=self.settings.worker_concurrency),
            ),
            trust_env=False,
        )

    async def close(self) -> None:
        await self.wait_for_jobs()
        await self.http.aclose()

    async def wait_for_jobs(self) -> None:
        """Let running fulfilment jobs finish (shutdown, and tests)."""
        while self.jobs:
            await asyncio.gather(*self.jobs, return_exceptions=True)

    async def run_once(self, *, sweep: bool | None = None) -> PassStats:
        """One pass: fan out, deliver one batch, send mail, and sweep when due (or when told)."""
        stats = PassStats()
        async with self.sessionmaker.begin() as session:
            stats.fanned_out = await delivery.fan_out(
                session, now=utcnow(), limit=self.settings.worker_batch_size
            )
        async with self.sessionmaker.begin() as session:
            claims = await delivery.claim_due(
                session,
                settings=self.settings,
                now=utcnow(),
                # Never lease more than can be in flight at once: every claimed delivery then
                # finishes within one timeout, well inside its lease.
                limit=min(self.settings.worker_batch_size, self.settings.worker_concurrency),
            )
        if claims:
            results = await self._send_all(claims)
            async with self.sessionmaker.begin() as session:
                await delivery.record_results(
                    session, settings=self.settings, results=results, now=utcnow()
                )
            count_deliveries(results)
            stats.attempted = len(results)
            stats.succeeded = sum(result.succeeded for result in results)
        await self._send_mail(stats)
        stats.jobs_started = await self._start_jobs()
        if sweep or (sweep is None and self._sweep_due()):
            stats.swept = await self.sweep()
        return stats

    async def _send_all(
        self, claims: list[delivery.ClaimedDelivery]
    ) -> list[delivery.AttemptResult]:
        limit = asyncio.Semaphore(self.settings.worker_concurrency)

        async def bounded(claim: delivery.ClaimedDelivery) -> delivery.AttemptResult:
            async with limit:
                return await delivery.send(self.http, claim, settings=self.settings)

        return list(await asyncio.gather(*(bounded(claim) for claim in claims)))

    async def _send_mail(self, stats: PassStats) -> None:
        """Claim due messages (committed lease), send outside any transaction, record."""
        async with self.sessionmaker.begin() as session:
            claims = await sender.claim_due(
                session,
                settings=self.settings,
                now=utcnow(),
                limit=self.settings.worker_batch_size,
            )
        if not claims:
            return
        results = await sender.send_all(claims, settings=self.settings)
        async with self.sessionmaker.begin() as session:
            await sender.record_results(session, results=results, now=utcnow())
        for result in results:
            outcome = "sent" if result.sent else "failed" if result.permanent else "retry"
            MAIL_MESSAGES.labels(outcome).inc()
        stats.mail_attempted = len(results)
        stats.mail_sent = sum(result.sent for result in results)

    async def _start_jobs(self) -> int:
        """Claim fulfilment jobs up to this worker's capacity and run them as tasks."""
        async with self.sessionmaker.begin() as session:
            claims = await jobs.claim_due(
                session, settings=self.settings, now=utcnow(), limit=self.max_jobs - len(self.jobs)
            )
        for claim in claims:
            run = runner.JobRun(
                claim, sessionmaker=self.sessionmaker, settings=self.settings, http=self.http
            )
            task = asyncio.create_task(timed(run, claim.phase))
            self.jobs.add(task)
            task.add_done_callback(self.jobs.discard)
        return len(claims)

    def _sweep_due(self) -> bool:
        return time.monotonic() - self.last_sweep >= self.settings.sweep_interval

    async def sweep(self) -> int:
        self.last_sweep = time.monotonic()
        steps: list[Callable[..., Awaitable[int]]] = [
            sweeps.expire_unverified,
            reminders.send_verification_reminders,
            correspondence_delivery.record_delivery,
            sweeps.announce_overdue,
            sweeps.announce_due_soon,
            # After the overdue sweep, so a request found overdue is alerted in the same pass.
            alerts.mail_alerts,
            exports.delete_expired_exports,
        ]
        # Orphans are rare and the scan reads the whole export folder: hourly is plenty.
        if (
            self.last_orphan_sweep is None
            or self.last_sweep - self.last_orphan_sweep >= orphans.SWEEP_EVERY_SECONDS
        ):
            self.last_orphan_sweep = self.last_sweep
            steps.append(orphans.delete_orphaned_export_files)
        total = 0
        for step in steps:
            async with self.sessionmaker.begin() as session:
                total += await step(session, settings=self.settings, now=utcnow())
        return total

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; errors are logged and retried, never fatal."""
        while not stop.is_set():
            try:
                stats = await self.run_once()
            except Exception as exc:  # keep the worker alive through transient failures
                logger.error("worker pass failed: %s", type(exc).__name__)
                stats = PassStats()
            if not stats.busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.worker_poll_interval)


def count_deliveries(results: list[delivery.AttemptResult]) -> None:
    for result in results:
        if result.succeeded:
            outcome = "succeeded"
        elif result.status_code is not None:
            outcome = "http_error"
        else:
            outcome = "no_response"
        WEBHOOK_DELIVERIES.labels(outcome).inc()


async def timed(run: runner.JobRun, phase: str) -> None:
    """Run the job and record how long it took (failures included: run() never raises)."""
    started = time.perf_counter()
    try:
        await run.run()
    finally:
        FULFILMENT_JOB_DURATION.labels(phase).observe(time.perf_counter() - started)


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Standalone worker process body (``dsr worker``)."""
    engine = create_engine(settings)
    worker = Worker(settings, create_sessionmaker(engine))
    # Start-up objects never die: keep the collector from rescanning them during exports.
    gc.freeze()
    metrics_server = None
    if settings.worker_metrics_port is not None and settings.metrics_token is not None:
        metrics_server = await start_metrics_server(
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            token=settings.metrics_token.get_secret_value(),
        )
    logger.info("worker started")
    try:
        await worker.run_forever(stop)
    finally:
        if metrics_server is not None:
            metrics_server.close()
            await metrics_server.wait_closed()
        await worker.close()
        await engine.dispose()
        logger.info("worker stopped")
