"""Access tokens: every claim the service relies on must be present, not merely valid if present.

python-jose checks ``aud`` only when the token has one, so a token signed with the right key
but without an audience (minted for another use of the same key, say) used to be accepted.
"""

import time
import uuid
from typing import Any

import pytest
from httpx import AsyncClient
from jose import jwt

from app.auth.scopes import Scope
from app.auth.tokens import TOKEN_AUDIENCE, TOKEN_ISSUER
from app.core.crypto import derived_key
from tests.conftest import ADMIN_ID, TEST_SECRET_KEY

PROBLEM_JSON = "application/problem+json"


def _claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": TOKEN_ISSUER,
        "aud": TOKEN_AUDIENCE,
        "sub": ADMIN_ID,
        "role": "admin",
        "scope": " ".join(sorted(Scope)),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
    }


def _token(claims: dict[str, Any]) -> str:
    return str(jwt.encode(claims, derived_key(TEST_SECRET_KEY, "access-token"), algorithm="HS256"))


async def test_a_token_with_every_claim_is_accepted(client: AsyncClient) -> None:
    """Guards the next test: the same recipe with nothing removed works."""
    response = await client.get(
        "/v1/requests", headers={"Authorization": f"Bearer {_token(_claims())}"}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("missing", ["aud", "exp", "iat", "sub", "role", "iss"])
async def test_a_token_without_a_required_claim_is_401(client: AsyncClient, missing: str) -> None:
    claims = _claims()
    del claims[missing]
    response = await client.get(
        "/v1/requests", headers={"Authorization": f"Bearer {_token(claims)}"}
    )
    assert response.status_code == 401, (missing, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("claim", "value"),
    [("aud", "another-api"), ("aud", ["another-api"]), ("sub", 42), ("role", "root")],
)
async def test_a_token_with_a_wrong_claim_is_401(
    client: AsyncClient, claim: str, value: Any
) -> None:
    claims = {**_claims(), claim: value}
    response = await client.get(
        "/v1/requests", headers={"Authorization": f"Bearer {_token(claims)}"}
    )
    assert response.status_code == 401, (claim, response.text)
