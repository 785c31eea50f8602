"""The floor for intake in FastAPI: validate the same body, check a bearer header, no database.

Serve it with ``bench/intake.py --intake-app floor_app:app`` to see how close any FastAPI
implementation of ``POST /v1/requests`` could come to the bare endpoint.
"""

import uuid
from typing import Annotated

from fastapi import Body, Depends, FastAPI, Header, HTTPException
from fastapi.responses import Response

from app.requests.schemas import RequestCreate

app = FastAPI()


async def bearer(authorization: Annotated[str, Header()] = "") -> str:
    if not authorization.startswith("Bearer "):
        raise HTTPException(401)
    return authorization[7:]


@app.post("/v1/requests", status_code=201)
async def create(
    token: Annotated[str, Depends(bearer)], payload: Annotated[RequestCreate, Body()]
) -> Response:
    body = b'{"id":"%s","status":"awaiting_verification"}' % str(uuid.uuid4()).encode()
    return Response(body, status_code=201, media_type="application/json")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/oauth/token")
async def token() -> dict[str, str]:
    return {"access_token": "floor", "token_type": "Bearer"}
