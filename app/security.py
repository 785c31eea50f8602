"""Tokens, scopes and secret handling.

Access tokens are HS256 JWTs (python-jose) with an explicit algorithm allowlist, an audience,
``iat`` and ``exp``. Client secrets are random, stored as a keyed hash (for login) and, because
integrations sign identity assertions with them, as an encrypted copy for HS256 verification.
"""

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from jose import JWTError, jwt

ALGORITHMS = ["HS256"]
TOKEN_AUDIENCE = "dsr-api"
TOKEN_ISSUER = "dsr-service"


class Role(StrEnum):
    INTEGRATION = "integration"
    OFFICER = "officer"
    ADMIN = "admin"


class Scope(StrEnum):
    REQUESTS_SUBMIT = "requests:submit"
    REQUESTS_READ = "requests:read"
    REQUESTS_READ_ALL = "requests:read_all"
    REQUESTS_MANAGE = "requests:manage"
    CLIENTS_MANAGE = "clients:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"
    SUPPRESSIONS_CHECK = "suppressions:check"
    SUPPRESSIONS_MANAGE = "suppressions:manage"
    SOURCES_MANAGE = "sources:manage"


SCOPE_DESCRIPTIONS = {
    Scope.REQUESTS_SUBMIT: "Submit and cancel requests",
    Scope.REQUESTS_READ: "Read requests (integrations: only their own)",
    Scope.REQUESTS_READ_ALL: "Read every request",
    Scope.REQUESTS_MANAGE: "Act on requests: verify, pause, extend, reject, complete",
    Scope.CLIENTS_MANAGE: "Manage API clients",
    Scope.WEBHOOKS_MANAGE: "Manage webhook subscriptions (admins: every client's)",
    Scope.SUPPRESSIONS_CHECK: "Check whether a person is on the suppression list",
    Scope.SUPPRESSIONS_MANAGE: "List, add and remove suppression list entries",
    Scope.SOURCES_MANAGE: "Register, test and remove data sources (admins)",
}

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.INTEGRATION: frozenset(
        {
            Scope.REQUESTS_SUBMIT,
            Scope.REQUESTS_READ,
            Scope.WEBHOOKS_MANAGE,
            Scope.SUPPRESSIONS_CHECK,
        }
    ),
    Role.OFFICER: frozenset(
        {
            Scope.REQUESTS_SUBMIT,
            Scope.REQUESTS_READ,
            Scope.REQUESTS_READ_ALL,
            Scope.REQUESTS_MANAGE,
            Scope.WEBHOOKS_MANAGE,
            Scope.SUPPRESSIONS_CHECK,
            Scope.SUPPRESSIONS_MANAGE,
        }
    ),
    Role.ADMIN: frozenset(Scope),
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    client_id: str
    role: Role
    scopes: frozenset[str]

    @property
    def sees_all_requests(self) -> bool:
        return Scope.REQUESTS_READ_ALL in self.scopes


def _derived_key(secret_key: str, purpose: str) -> bytes:
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).digest()


def keyed_hash(value: str, *, secret_key: str, purpose: str) -> str:
    """HMAC-SHA256 of ``value`` under a key derived for ``purpose`` (hex)."""
    return hmac.new(_derived_key(secret_key, purpose), value.encode(), hashlib.sha256).hexdigest()


def hash_secret(secret: str, *, secret_key: str) -> str:
    """Keyed hash of a high-entropy client secret (HMAC-SHA256)."""
    return hmac.new(
        _derived_key(secret_key, "client-secret"), secret.encode(), hashlib.sha256
    ).hexdigest()


def secret_matches(secret: str, stored_hash: str, *, secret_key: str) -> bool:
    return hmac.compare_digest(hash_secret(secret, secret_key=secret_key), stored_hash)


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derived_key(secret_key, "secret-encryption")))


def encrypt_secret(secret: str, *, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def decrypt_secret(token: str, *, secret_key: str) -> str | None:
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def new_client_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def issue_access_token(
    *, client_id: str, role: Role, scopes: frozenset[str], secret_key: str, ttl_seconds: int
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
    }
    return jwt.encode(claims, _derived_key(secret_key, "access-token"), algorithm="HS256")


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


def verify_access_token(token: str, *, secret_key: str) -> Principal | None:
    """The caller's principal, or None when the token is invalid, forged or expired."""
    cache_key = f"{secret_key}:{token}"
    claims = _claims_cache.get(cache_key)
    if claims is None:
        try:
            claims = jwt.decode(
                token,
                _derived_key(secret_key, "access-token"),
                algorithms=ALGORITHMS,
                audience=TOKEN_AUDIENCE,
                issuer=TOKEN_ISSUER,
                options={"require_exp": True, "require_iat": True, "require_sub": True},
            )
        except (JWTError, ValueError, TypeError, KeyError):
            return None
        if not isinstance(claims.get("exp"), int | float):
            return None
        _claims_cache.put(cache_key, claims)
    try:
        role = Role(str(claims.get("role")))
    except ValueError:
        return None
    scopes = frozenset(str(claims.get("scope", "")).split()) & ROLE_SCOPES[role]
    return Principal(client_id=str(claims["sub"]), role=role, scopes=scopes)
