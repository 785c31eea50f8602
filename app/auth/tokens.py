"""Access tokens: HS256 JWTs (python-jose) with an explicit algorithm allowlist.

Each token carries an audience, issuer, subject, role, ``iat`` and ``exp``, and a token
lacking any of them is refused: python-jose checks ``aud`` and ``iss`` only when present, so
presence is required explicitly. Verified claims are cached briefly, because the signature
check dominates the cost of a call.

A token also carries ``rev``, its client's revocation mark when it was issued: disabling,
deleting or rotating a client moves the mark on, and ``revocation.ActiveClients`` refuses
tokens with an older one. Comparing marks, not ``iat`` with the change's time, keeps a token
issued just after a rotation valid whatever the clocks of the processes involved.
"""

import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from jose import JWTError, jwt

from app.auth.scopes import ROLE_SCOPES, Principal, Role
from app.core.crypto import derived_key, derived_keys

ALGORITHMS = ["HS256"]
TOKEN_AUDIENCE = "dsr-api"
TOKEN_ISSUER = "dsr-service"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def revocation_mark(tokens_revoked_at: datetime | None) -> int:
    """A client's ``tokens_revoked_at`` as whole microseconds (0: never revoked)."""
    if tokens_revoked_at is None:
        return 0
    return (tokens_revoked_at - _EPOCH) // timedelta(microseconds=1)


def issue_access_token(
    *,
    client_id: str,
    role: Role,
    scopes: frozenset[str],
    secret_key: str,
    ttl_seconds: int,
    revocation_mark: int = 0,
) -> str:
    now = int(time.time())
    claims = {
        "iss": TOKEN_ISSUER,
        "aud": TOKEN_AUDIENCE,
        "sub": client_id,
        "role": role.value,
        "scope": " ".join(sorted(scopes)),
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "rev": revocation_mark,
    }
    return jwt.encode(claims, derived_key(secret_key, "access-token"), algorithm="HS256")


class _ClaimsCache:
    """Small LRU of verified token claims: signature checks dominate the cost of a call."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.entries: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def get(self, token: str) -> dict[str, Any] | None:
        claims = self.entries.get(token)
        if claims is None:
            return None
        if claims["exp"] <= time.time():
            self.entries.pop(token, None)
            return None
        self.entries.move_to_end(token)
        return claims

    def put(self, token: str, claims: dict[str, Any]) -> None:
        self.entries[token] = claims
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)


_claims_cache = _ClaimsCache()


def _decode(token: str, secret_keys: Sequence[str]) -> dict[str, Any] | None:
    # The current key first: after a rotation, tokens signed under a retired key still work
    # until they expire (DSR_ACCESS_TOKEN_TTL at most).
    for key in derived_keys(secret_keys, "access-token"):
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=TOKEN_AUDIENCE,
                issuer=TOKEN_ISSUER,
                options={
                    "require_aud": True,
                    "require_iss": True,
                    "require_exp": True,
                    "require_iat": True,
                    "require_sub": True,
                },
            )
        except (JWTError, ValueError, TypeError, KeyError):
            continue
        return claims
    return None


def verify_access_token(token: str, *, secret_keys: Sequence[str]) -> Principal | None:
    """The caller's principal, or None when the token is invalid, forged or expired.

    ``secret_keys``: the current DSR_SECRET_KEY, then any retired ones still accepted.
    """
    cache_key = f"{'|'.join(secret_keys)}:{token}"
    claims = _claims_cache.get(cache_key)
    if claims is None:
        claims = _decode(token, secret_keys)
        if claims is None:
            return None
        if not isinstance(claims.get("exp"), int | float) or "role" not in claims:
            return None
        _claims_cache.put(cache_key, claims)
    try:
        role = Role(str(claims.get("role")))
    except ValueError:
        return None
    mark = claims.get("rev", 0)
    if not isinstance(mark, int) or isinstance(mark, bool):
        return None
    scopes = frozenset(str(claims.get("scope", "")).split()) & ROLE_SCOPES[role]
    return Principal(client_id=str(claims["sub"]), role=role, scopes=scopes, revocation_mark=mark)
