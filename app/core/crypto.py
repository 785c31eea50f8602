"""Keys derived from DSR_SECRET_KEY per purpose, keyed hashes and symmetric encryption.

Keyed hashes (HMAC-SHA256) let the service match identities and codes without storing them;
Fernet encrypts what must be read back (client secrets, source credentials, queued mail).

Key rotation: everything new is signed, hashed and encrypted under the current key (the
first of ``keys``); reading also accepts the retired keys of DSR_SECRET_KEY_PREVIOUS, so
callers pass ``settings.reading_keys`` wherever they read and ``settings.secret_key`` where
they write.
"""

import base64
import hashlib
import hmac
from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


@lru_cache(maxsize=64)
def derived_key(secret_key: str, purpose: str) -> bytes:
    """A key for one purpose (token signing, hashing, encryption), derived from DSR_SECRET_KEY.

    Cached: intake derives the same few keys for every request (a handful of keys and
    purposes per process)."""
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).digest()


def derived_keys(secret_keys: Sequence[str], purpose: str) -> list[bytes]:
    """The purpose's key under each of ``secret_keys`` (current first), for verifying."""
    return [derived_key(secret_key, purpose) for secret_key in secret_keys]


def keyed_hash(value: str, *, secret_key: str, purpose: str) -> str:
    """HMAC-SHA256 of ``value`` under a key derived for ``purpose`` (hex)."""
    return hmac.new(derived_key(secret_key, purpose), value.encode(), hashlib.sha256).hexdigest()


def keyed_hashes(value: str, *, secret_keys: Sequence[str], purpose: str) -> list[str]:
    """``value``'s keyed hash under each key (current first): what an equality look-up of a
    value stored before a key rotation must try."""
    return list(
        dict.fromkeys(keyed_hash(value, secret_key=key, purpose=purpose) for key in secret_keys)
    )


def mac_matches(expected_under: Sequence[str], given: str) -> bool:
    """Whether ``given`` equals any of the candidate MACs (constant time per candidate)."""
    matched = False
    for candidate in expected_under:
        matched |= hmac.compare_digest(candidate.encode(), given.encode())
    return matched


def _single_fernet(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derived_key(secret_key, "secret-encryption")))


@lru_cache(maxsize=8)
def _fernet(secret_keys: tuple[str, ...]) -> MultiFernet:
    # MultiFernet encrypts with the first key and decrypts with any of them, in order.
    return MultiFernet([_single_fernet(key) for key in secret_keys])


def encrypt_secret(secret: str, *, secret_key: str) -> str:
    return _fernet((secret_key,)).encrypt(secret.encode()).decode()


def decrypt_secret(token: str, *, secret_keys: Sequence[str]) -> str | None:
    """The plaintext, trying the current key then each previous one; None if none opens it."""
    try:
        return _fernet(tuple(secret_keys)).decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def reencrypt_secret(token: str, *, secret_keys: Sequence[str]) -> str | None:
    """``token`` re-encrypted under the current key (the first); None if no key opens it."""
    try:
        return _fernet(tuple(secret_keys)).rotate(token.encode()).decode()
    except InvalidToken:
        return None


def encrypted_under_current(token: str, *, secret_key: str) -> bool:
    try:
        _single_fernet(secret_key).decrypt(token.encode())
    except InvalidToken:
        return False
    return True
