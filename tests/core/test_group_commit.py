"""Group commit at intake: concurrent requests share transactions, never each other's errors.

Every test runs on SQLite and PostgreSQL (the ``backend`` fixture in conftest).
"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from app.core.group_commit import GroupCommitter, Write
from app.models import DsrRequest, MailMessage, OutboxEvent, RequestEvent, UsedAssertion, metadata
from tests.factories import count_rows, identity_assertion, request_body

USED = metadata.tables["used_assertions"]


def spent(jti: str) -> Write:
    row = {"issuer": "integ_test", "jti": jti, "expires_at": datetime.now(UTC) + timedelta(hours=1)}
    return Write(rows=[(USED, [row])])


async def stored_jtis(app: FastAPI) -> set[str]:
    async with app.state.sessionmaker() as session:
        return set((await session.execute(select(UsedAssertion.jti))).scalars())


async def test_concurrent_intakes_share_transactions_and_all_land(
    app: FastAPI, client: AsyncClient, integration_headers: dict[str, str]
) -> None:
    requests_per_insert: list[int] = []

    @event.listens_for(app.state.engine.sync_engine, "before_execute")
    def _count(_conn: Any, clause: Any, multiparams: Any, params: Any, _options: Any) -> None:
        if getattr(clause, "table", None) is not None and clause.table.name == "requests":
            requests_per_insert.append(len(multiparams) or 1)

    responses = await asyncio.gather(
        *(
            client.post(
                "/v1/requests",
                headers=integration_headers,
                json=request_body(external_ref=f"GC-{n}"),
            )
            for n in range(16)
        )
    )
    assert [r.status_code for r in responses] == [201] * 16
    assert max(requests_per_insert) >= 2, requests_per_insert
    assert sum(requests_per_insert) == 16
    # Each request came with its audit entry, webhook event and acknowledgement.
    assert await count_rows(app, DsrRequest) == 16
    assert await count_rows(app, RequestEvent) == 16
    assert await count_rows(app, OutboxEvent) == 16
    assert await count_rows(app, MailMessage) == 16
    for response in responses:
        got = await client.get(f"/v1/requests/{response.json()['id']}", headers=integration_headers)
        assert got.status_code == 200
        assert got.json()["external_ref"] == response.json()["external_ref"]


async def test_a_replayed_assertion_fails_alone_in_a_shared_transaction(
    app: FastAPI,
    client: AsyncClient,
    integration_headers: dict[str, str],
    integration_credentials: tuple[str, str],
) -> None:
    token = identity_assertion(*integration_credentials)
    bodies = [request_body(external_ref=f"PLAIN-{n}") for n in range(8)]
    bodies += [request_body(external_ref=f"ASSERTED-{n}", identity_assertion=token) for n in (1, 2)]
    responses = await asyncio.gather(
        *(client.post("/v1/requests", headers=integration_headers, json=body) for body in bodies)
    )
    plain, asserted = responses[:8], responses[8:]
    assert [r.status_code for r in plain] == [201] * 8
    assert sorted(r.status_code for r in asserted) == [201, 422]
    refused = next(r for r in asserted if r.status_code == 422)
    assert refused.json()["detail"] == "This assertion (jti) has already been used."
    accepted = next(r for r in asserted if r.status_code == 201)
    assert accepted.json()["status"] == "in_progress"
    assert await count_rows(app, DsrRequest) == 9
    # The refused request left nothing behind: one received event per created request.
    assert await count_rows(app, OutboxEvent) == 9 + 1  # + request.verified of the accepted one
    assert await count_rows(app, UsedAssertion) == 1


async def test_a_write_that_breaks_a_constraint_raises_for_its_caller_only(app: FastAPI) -> None:
    committer = GroupCommitter(app.state.engine)
    await committer.write(spent("taken"))
    results = await asyncio.gather(
        *(committer.write(spent(jti)) for jti in ("a", "taken", "b", "c")),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None and results[3] is None
    assert isinstance(results[1], IntegrityError)
    assert await stored_jtis(app) == {"taken", "a", "b", "c"}


async def test_on_conflict_names_the_error_its_caller_sees(app: FastAPI) -> None:
    committer = GroupCommitter(app.state.engine)
    await committer.write(spent("once"))
    again = spent("once")
    again.on_conflict = {"used_assertions": lambda: LookupError("replayed")}
    results = await asyncio.gather(
        committer.write(spent("fresh")), committer.write(again), return_exceptions=True
    )
    assert results[0] is None
    assert isinstance(results[1], LookupError) and str(results[1]) == "replayed"


async def test_writes_of_one_caller_are_all_or_nothing(app: FastAPI) -> None:
    committer = GroupCommitter(app.state.engine)
    await committer.write(spent("dup"))
    expires = datetime.now(UTC) + timedelta(hours=1)
    both = Write(
        rows=[
            (USED, [{"issuer": "integ_test", "jti": "new", "expires_at": expires}]),
            (USED, [{"issuer": "integ_test", "jti": "dup", "expires_at": expires}]),
        ]
    )
    results = await asyncio.gather(
        committer.write(both), committer.write(spent("other")), return_exceptions=True
    )
    assert isinstance(results[0], IntegrityError)
    assert results[1] is None
    assert await stored_jtis(app) == {"dup", "other"}


async def test_a_caller_cancelled_while_queued_writes_nothing(app: FastAPI) -> None:
    committer = GroupCommitter(app.state.engine)
    kept = asyncio.create_task(committer.write(spent("kept")))
    dropped = asyncio.create_task(committer.write(spent("dropped")))
    await asyncio.sleep(0)  # both are queued; the transaction that takes them has not begun
    dropped.cancel()
    await kept
    with pytest.raises(asyncio.CancelledError):
        await dropped
    assert await stored_jtis(app) == {"kept"}


async def test_many_writers_exceeding_one_transaction_all_commit(app: FastAPI) -> None:
    committer = GroupCommitter(app.state.engine)
    jtis = [uuid.uuid4().hex for _ in range(150)]
    await asyncio.gather(*(committer.write(spent(jti)) for jti in jtis))
    assert await stored_jtis(app) == set(jtis)


async def test_prepare_runs_once_per_transaction_and_finish_completes_rows(app: FastAPI) -> None:
    calls: list[list[str]] = []

    async def prepare(_connection: Any, writes: list[Write]) -> None:
        calls.append([rows[0]["jti"] for write in writes for _table, rows in write.rows])
        for write in writes:
            for _table, rows in write.rows:
                rows[0]["jti"] += "-prepared"

    def finishing(write: Write) -> None:
        def finish() -> None:
            write.rows[0][1][0]["jti"] += "-finished"

        write.finish = finish

    committer = GroupCommitter(app.state.engine)
    writes = [spent(jti) for jti in ("a", "b", "c")]
    for write in writes:
        write.prepare = prepare
        finishing(write)
    await asyncio.gather(*(committer.write(write) for write in writes))
    assert sorted(jti for batch in calls for jti in batch) == ["a", "b", "c"]
    assert await stored_jtis(app) == {f"{jti}-prepared-finished" for jti in "abc"}
