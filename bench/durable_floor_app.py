"""The floor for a *durable* intake in FastAPI: ``floor_app`` plus what Step 1 makes mandatory.

On top of ``floor_app`` (the same body validated by ``RequestCreate``, a bearer header) it
verifies the access token with the service's own ``authenticate`` and commits the three rows
the issue requires for a new request (the request, its audit entry, its outbox event) through
the service's ``GroupCommitter`` before answering 201. It leaves out everything else intake
does (acknowledgement mail, deadline view, the full response), so no implementation of intake
that keeps those three guarantees can be cheaper per request.

Serve it with ``bench/intake.py --intake-app durable_floor_app:app``; its rows count for the
"never loses a request" check.
"""

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Body, Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.security import OAuth2PasswordBearer

from app.auth import router as auth
from app.auth.deps import authenticate
from app.auth.scopes import Principal
from app.core.config import get_settings
from app.core.db import create_engine, create_sessionmaker
from app.core.group_commit import GroupCommitter, Write
from app.health import router as health
from app.models import metadata
from app.requests.schemas import RequestCreate

settings = get_settings()
bearer = OAuth2PasswordBearer(tokenUrl="/v1/oauth/token", auto_error=False)
tables = metadata.tables


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = create_engine(settings)
    app.state.settings = settings
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.committer = GroupCommitter(engine)
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)
# The service's own token endpoint, so the benchmark's client gets a real, verifiable token,
# and its probes, which the benchmark waits on.
app.include_router(auth.router)
app.include_router(health.router)


async def principal(token: Annotated[str | None, Depends(bearer)]) -> Principal:
    return authenticate(settings, token)


@app.post("/v1/requests", status_code=201)
async def create(
    request: Request,
    caller: Annotated[Principal, Depends(principal)],
    payload: Annotated[RequestCreate, Body()],  # type: ignore[valid-type]
) -> Response:
    now = datetime.now(UTC)
    request_id = uuid.uuid4()
    subject = payload.subject
    request_row = {
        "id": request_id,
        "type": payload.type,
        "status": "awaiting_verification",
        "regulation": payload.regulation.value,
        "channel": payload.channel.value,
        "received_at": payload.received_at or now,
        "external_ref": payload.external_ref,
        "submitted_by": caller.client_id,
        "subject_email": subject.email,
        "subject_phone": subject.phone,
        "subject_name": subject.name,
        "details": {},
        "created_at": now,
        "updated_at": now,
    }
    audit_row = {
        "request_id": request_id,
        "type": "request.received",
        "actor": caller.client_id,
        "at": now,
        "data": {},
    }
    outbox_row = {
        "id": uuid.uuid4(),
        "event_type": "request.received",
        "request_id": request_id,
        "owner_client_id": caller.client_id,
        "payload": {"type": "request.received", "data": {"id": str(request_id)}},
        "created_at": now,
    }
    await request.app.state.committer.write(
        Write(
            rows=[
                (tables["requests"], [request_row]),
                (tables["request_events"], [audit_row]),
                (tables["outbox"], [outbox_row]),
            ]
        )
    )
    body = json.dumps(
        {
            "id": str(request_id),
            "status": "awaiting_verification",
            "external_ref": payload.external_ref,
        },
        separators=(",", ":"),
    )
    return Response(body, status_code=201, media_type="application/json")
