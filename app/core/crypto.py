"""Keys derived from DSR_SECRET_KEY per purpose, keyed hashes and symmetric encryption.

Keyed hashes (HMAC-SHA256) let the service match identities and codes without storing them;
Fernet encrypts what must be read back (client secrets, source credentials, queued mail).
"""

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken


def derived_key(secret_key: str, purpose: str) -> bytes:
    """A key for one purpose (token signing, hashing, encryption), derived from DSR_SECRET_KEY."""
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).digest()


def keyed_hash(value: str, *, secret_key: str, purpose: str) -> str:
    """HMAC-SHA256 of ``value`` under a key derived for ``purpose`` (hex)."""
    return hmac.new(derived_key(secret_key, purpose), value.encode(), hashlib.sha256).hexdigest()


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derived_key(secret_key, "secret-encryption")))


def encrypt_secret(secret: str, *, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def decrypt_secret(token: str, *, secret_key: str) -> str | None:
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken:
        return None
