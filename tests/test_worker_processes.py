"""Real ``dsr worker`` processes against real SQLite and PostgreSQL databases.

The API app fixture has its in-process worker disabled, so only the subprocesses started here
deliver. The receiver (tests/webhook_receiver.py) serves from this test's event loop: every
wait below awaits (never blocks) so it keeps answering while the workers run, and every wait
is bounded. Worker processes are always killed in ``finally``.

Covered:
- a worker killed with SIGKILL mid-delivery, then a fresh worker: nothing lost, every body
  signed, redelivered copies carry the same ``webhook-id`` and body (at-least-once), and only
  the batch that was in flight is sent again;
- two workers racing on the same database never send one delivery twice in normal operation,
  also when a slow endpoint keeps a claim busy for most of a short lease;
- SIGTERM stops a worker with exit code 0 within seconds, finishing (and recording) the
  delivery it has in flight rather than abandoning it.
"""

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlmodel import col

from app.core.config import Settings
from app.models import OutboxEvent, WebhookAttempt, WebhookDelivery
from tests.factories import create_request
from tests.webhook_receiver import Received, Receiver, Reply

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0  # a worker process imports the app (about 1-2 s) before its first pass


class WorkerProcess:
    """One ``python -m app.cli worker`` child with its output in a log file."""

    def __init__(self, settings: Settings, log_dir: Path, name: str, **env: object) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("DSR_")}
        self.env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "DSR_ENV": "development",
                "DSR_DATABASE_URL": settings.database_url,
                # Same key as the API that encrypted the endpoint's secret: the worker must
                # decrypt it to sign.
                "DSR_SECRET_KEY": settings.secret_key,
                "DSR_WEBHOOK_ALLOW_PRIVATE": "true",
                "DSR_WORKER_POLL_INTERVAL": "0.05",
                "DSR_WEBHOOK_TIMEOUT": "2",
                # A dead worker's claims come back after 3 s.
                "DSR_WEBHOOK_LEASE_SECONDS": "3",
                "DSR_SWEEP_INTERVAL": "3600",
                "DSR_DB_POOL_SIZE": "2",
            }
        )
        self.env.update({f"DSR_{key.upper()}": str(value) for key, value in env.items()})
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> "WorkerProcess":
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app.cli",
                "worker",
                cwd=ROOT,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    async def wait_started(self) -> None:
        await wait_until(
            lambda: "worker started" in self.log() or not self.running,
            within=START_TIMEOUT,
            what=f"{self.name} to start",
        )
        assert self.running, f"{self.name} exited early:\n{self.log()}"

    async def signal(self, signum: int, within: float = 10.0) -> int:
        """Send ``signum`` and wait (bounded) for the exit code."""
        assert self.proc is not None
        os.kill(self.pid, signum)
        try:
            return await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            raise AssertionError(
                f"{self.name} still running {within:g} s after signal {signum}:\n{self.log()}"
            ) from None

    async def stop(self) -> None:
        """Kill for good (the ``finally`` path): never leaves a child behind."""
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), 10)


@pytest.fixture
async def spawn(settings: Settings, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await spawn(name, **DSR_overrides)`` starts a worker; all are killed at teardown."""
    started: list[WorkerProcess] = []

    async def start(name: str, **env: object) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path, name, **env)
        started.append(worker)
        return await worker.start()

    try:
        yield start
    finally:
        for worker in started:
            await worker.stop()


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    within: float,
    what: str,
    every: float = 0.02,
) -> None:
    """Await ``condition`` (sync or async) until true; AssertionError after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(every)


async def subscribe(client: AsyncClient, headers: dict[str, str], url: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhooks", headers=headers, json={"url": url, "events": ["request.*"]}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_requests(
    client: AsyncClient, headers: dict[str, str], count: int, prefix: str
) -> list[str]:
    ids = []
    for n in range(count):
        created = await create_request(client, headers, external_ref=f"{prefix}-{n}")
        ids.append(str(created["id"]))
    return ids


async def db_state(app: FastAPI) -> dict[str, Any]:
    """Outbox, deliveries and attempts as the workers left them."""
    async with app.state.sessionmaker() as session:
        outbox = (await session.execute(select(OutboxEvent))).scalars().all()
        deliveries = (await session.execute(select(WebhookDelivery))).scalars().all()
        attempts = (
            await session.execute(
                select(col(WebhookAttempt.delivery_id), func.count()).group_by(
                    col(WebhookAttempt.delivery_id)
                )
            )
        ).all()
    return {
        "outbox": list(outbox),
        "deliveries": list(deliveries),
        "attempts": {str(delivery_id): count for delivery_id, count in attempts},
    }


def settled(app: FastAPI, count: int) -> Callable[[], Awaitable[bool]]:
    """True once ``count`` deliveries exist and every one is recorded as succeeded."""

    async def check() -> bool:
        async with app.state.sessionmaker() as session:
            statuses = (await session.execute(select(col(WebhookDelivery.status)))).scalars().all()
        return len(statuses) == count and all(status == "succeeded" for status in statuses)

    return check


def is_complete(item: Received) -> bool:
    """False for a request cut off by its sender's death (the receiver still logs it)."""
    return len(item.body) == int(item.headers.get("content-length", "-1"))


def received_ids(received: list[Received]) -> list[str]:
    return [item.headers["webhook-id"] for item in received]


def assert_signed_and_consistent(received: list[Received], secret: str) -> None:
    """Every body verifies; copies of one webhook-id carry the same event body."""
    bodies: dict[str, bytes] = {}
    for item in received:
        assert item.verifies_with(secret), item.headers
        webhook_id = item.headers["webhook-id"]
        assert bodies.setdefault(webhook_id, item.body) == item.body, webhook_id


# ---------------------------------------------------------------- SIGKILL mid-delivery

KILL_EVENTS = 30
KILL_BATCH = 10


async def test_worker_killed_mid_delivery_loses_nothing(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    spawn: Callable[..., Awaitable[WorkerProcess]],
) -> None:
    async with Receiver(default=Reply(delay=0.5)) as receiver:
        endpoint = await subscribe(client, admin_headers, receiver.url)
        request_ids = await create_requests(client, admin_headers, KILL_EVENTS, "kill")
        # Batches of 10: the first is sent and recorded, the second is in flight at the kill.
        first = await spawn("first", worker_batch_size=KILL_BATCH)
        await wait_until(
            lambda: len(receiver.received) >= KILL_BATCH + 2 or not first.running,
            within=START_TIMEOUT + 10,
            what="the first worker's second batch to reach the receiver",
        )
        assert first.running, first.log()
        os.kill(first.pid, signal.SIGKILL)
        assert await asyncio.wait_for(first.proc.wait(), 10) == -signal.SIGKILL  # type: ignore[union-attr]
        seen_at_kill = len(receiver.received)
        # Its lease (3 s) keeps the in-flight batch from the next worker until it expires.
        second = await spawn("second", worker_batch_size=KILL_BATCH)
        await wait_until(
            settled(app, KILL_EVENTS),
            within=START_TIMEOUT + 20,
            what="every delivery to be recorded as succeeded",
            every=0.1,
        )
        assert second.running, second.log()
    state = await db_state(app)
    delivery_ids = {str(delivery.id) for delivery in state["deliveries"]}
    # A request the killed worker was still writing arrives truncated: not a delivery.
    complete = [item for item in receiver.received if is_complete(item)]
    truncated = [item for item in receiver.received if not is_complete(item)]
    got = Counter(received_ids(complete))

    # Nothing lost: every outbox event became a delivery, and every delivery arrived.
    assert len(state["outbox"]) == KILL_EVENTS
    assert all(event.published_at is not None for event in state["outbox"])
    assert {delivery.outbox_id for delivery in state["deliveries"]} == {
        event.id for event in state["outbox"]
    }
    lost = delivery_ids - set(got)
    assert not lost, f"lost {len(lost)} deliveries"
    assert set(got) == delivery_ids
    assert {item.json["data"]["id"] for item in complete} == set(request_ids)
    assert {item.json["type"] for item in complete} == {"request.received"}
    assert_signed_and_consistent(complete, endpoint["secret"])
    assert len(truncated) <= KILL_BATCH and set(received_ids(truncated)) <= set(got)
    # At-least-once: the batch in flight at the kill was sent again (same webhook-id), and
    # only that batch: what the first worker had recorded was not resent.
    duplicated = {webhook_id for webhook_id, count in got.items() if count > 1}
    assert 1 <= len(duplicated) <= KILL_BATCH, (seen_at_kill, got)
    assert max(got.values()) == 2
    for delivery in state["deliveries"]:
        assert delivery.status == "succeeded"
        assert delivery.claimed_until is None
        # The killed worker never recorded its attempt: one recorded attempt per delivery.
        assert delivery.attempt_count == 1 == state["attempts"][str(delivery.id)]


# ---------------------------------------------------------------- two workers

RACE_EVENTS = 200


async def test_two_workers_never_send_a_delivery_twice(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    backend: str,
    spawn: Callable[..., Awaitable[WorkerProcess]],
) -> None:
    """PostgreSQL: claims under FOR UPDATE SKIP LOCKED. SQLite (one machine, normally one
    worker) holds too: BEGIN IMMEDIATE serialises the claims."""
    async with Receiver() as receiver:
        endpoint = await subscribe(client, admin_headers, receiver.url)
        # Half waiting as a backlog before the workers start, half arriving while they run.
        request_ids = await create_requests(client, admin_headers, RACE_EVENTS // 2, "backlog")
        workers = [await spawn(f"racer-{n}", worker_batch_size=25) for n in range(2)]
        request_ids += await create_requests(client, admin_headers, RACE_EVENTS // 2, "live")
        await wait_until(
            settled(app, RACE_EVENTS),
            within=START_TIMEOUT + 20,
            what=f"{RACE_EVENTS} deliveries to succeed",
            every=0.1,
        )
        # Anything sent twice would arrive about now; give it a moment to show up.
        await asyncio.sleep(0.3)
        for worker in workers:
            assert worker.running, worker.log()
    state = await db_state(app)
    got = Counter(received_ids(receiver.received))
    delivery_ids = {str(delivery.id) for delivery in state["deliveries"]}
    assert all(is_complete(item) for item in receiver.received)
    assert len(receiver.received) == RACE_EVENTS, f"{backend}: {len(receiver.received)} received"
    assert set(got) == delivery_ids
    assert [webhook_id for webhook_id, count in got.items() if count > 1] == []
    assert {item.json["data"]["id"] for item in receiver.received} == set(request_ids)
    assert_signed_and_consistent(receiver.received, endpoint["secret"])
    assert len(state["outbox"]) == len(state["deliveries"]) == RACE_EVENTS
    assert state["attempts"] == dict.fromkeys(delivery_ids, 1)
    assert all(delivery.attempt_count == 1 for delivery in state["deliveries"])


# ---------------------------------------------------------------- graceful stop


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_idle_worker_stops_on_signal_with_exit_code_zero(
    spawn: Callable[..., Awaitable[WorkerProcess]], signum: int
) -> None:
    worker = await spawn("idle")
    await worker.wait_started()
    await asyncio.sleep(0.3)  # a few empty passes
    started = time.monotonic()
    assert await worker.signal(signum, within=5) == 0, worker.log()
    assert time.monotonic() - started < 5
    assert "worker stopped" in worker.log()


async def test_sigterm_finishes_and_records_the_delivery_in_flight(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    spawn: Callable[..., Awaitable[WorkerProcess]],
) -> None:
    async with Receiver(default=Reply(delay=1.0)) as receiver:
        endpoint = await subscribe(client, admin_headers, receiver.url)
        await create_request(client, admin_headers)
        worker = await spawn("graceful")
        await receiver.wait_for(1, within=START_TIMEOUT)
        started = time.monotonic()
        assert await worker.signal(signal.SIGTERM, within=5) == 0, worker.log()
        # It waited for the receiver's answer (about 1 s) rather than dropping the attempt.
        assert time.monotonic() - started < 5
    (item,) = receiver.received
    assert item.verifies_with(endpoint["secret"])
    state = await db_state(app)
    (delivery,) = state["deliveries"]
    assert str(delivery.id) == item.headers["webhook-id"]
    assert delivery.status == "succeeded" and delivery.claimed_until is None
    assert state["attempts"] == {str(delivery.id): 1}


# ---------------------------------------------------------------- slow endpoint, short lease


async def test_two_workers_do_not_resend_a_slow_batch(
    app: FastAPI,
    client: AsyncClient,
    admin_headers: dict[str, str],
    spawn: Callable[..., Awaitable[WorkerProcess]],
) -> None:
    """A lease must outlive everything claimed with it, however slow (within the timeout)
    the endpoint is. Regression: claim_due used to lease a whole batch (here 6) that the
    worker then sent in ceil(batch / concurrency) waves of up to a timeout each, recording
    nothing until the last wave; the lease expired mid-batch and the second worker sent the
    same deliveries again. Now a pass claims at most ``worker_concurrency`` deliveries and an
    attempt, DNS included, is bounded by the timeout."""
    tight = {
        "worker_batch_size": 6,
        "worker_concurrency": 1,
        "webhook_timeout": 1,
        "webhook_lease_seconds": 1.5,  # valid: > timeout
    }
    async with Receiver(default=Reply(delay=0.6)) as receiver:  # always within the timeout
        endpoint = await subscribe(client, admin_headers, receiver.url)
        # A backlog of 6 before the workers start: the old code leased all 6 to one worker
        # and needed 3.6 s to send them, more than twice the lease.
        await create_requests(client, admin_headers, 6, "slow")
        workers = [await spawn(f"slow-{n}", **tight) for n in range(2)]
        await wait_until(
            settled(app, 6), within=START_TIMEOUT + 15, what="6 deliveries to succeed", every=0.1
        )
        await asyncio.sleep(0.7)  # a copy sent late would arrive in this window
        for worker in workers:
            assert worker.running, worker.log()
    got = Counter(received_ids(receiver.received))
    assert len(got) == 6
    assert [webhook_id for webhook_id, count in got.items() if count > 1] == []
    assert_signed_and_consistent(receiver.received, endpoint["secret"])
    state = await db_state(app)
    assert sorted(state["attempts"].values()) == [1] * 6
