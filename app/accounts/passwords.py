"""Passwords: Argon2id hashes, the policy a new password must meet, and temporary passwords.

The policy follows NIST SP 800-63B: a minimum length (no composition rules), and no password
found on a list of common or breached ones. The list shipped here is the 20,000 most common
passwords from Royce Williams' breach corpus, as Django distributes it
(``common-passwords.txt.gz``, lower-cased, most common first); no network is needed.
"""

import gzip
import re
import secrets
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 256
# argon2-cffi's defaults (RFC 9106 low-memory profile): Argon2id, t=3, m=64 MiB, p=4.
_hasher = PasswordHasher()
# Checked against when the account does not exist, so both answers take as long.
_DUMMY_HASH = _hasher.hash("not-a-password-anyone-has-" + secrets.token_hex(8))


class PasswordRefused(ValueError):
    """The password does not meet the policy; the message says why (never the password)."""


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    data = (resources.files("app.accounts") / "common-passwords.txt.gz").read_bytes()
    return frozenset(line.strip() for line in gzip.decompress(data).decode().splitlines())


def hash_password(password: str) -> str:
    """An Argon2id hash (PHC string: ``$argon2id$v=19$m=...,t=...,p=...$salt$hash``)."""
    return _hasher.hash(password)


def verify_password(password: str, stored_hash: str | None) -> bool:
    """Whether ``password`` matches; with no hash (unknown account) a dummy is checked, so
    the time taken does not tell whether the account exists."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with other parameters than today's: hash it again."""
    return _hasher.check_needs_rehash(stored_hash)


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[^a-z0-9]+", text.lower()) if len(word) >= 4]


def check_policy(password: str, *, email: str, name: str) -> None:
    """Raise ``PasswordRefused`` unless ``password`` may be used by the person."""
    if len(password) < MIN_LENGTH:
        raise PasswordRefused(f"The password must be at least {MIN_LENGTH} characters long.")
    if len(password) > MAX_LENGTH:
        raise PasswordRefused(f"The password must be at most {MAX_LENGTH} characters long.")
    lowered = password.lower()
    if lowered in common_passwords() or lowered.strip() in common_passwords():
        raise PasswordRefused(
            "This password is on a list of common or breached passwords; choose another."
        )
    local_part = email.lower().split("@", 1)[0]
    personal = {email.lower(), local_part, *_words(local_part), *_words(name)}
    if any(part and len(part) >= 4 and part in lowered for part in personal):
        raise PasswordRefused("The password must not contain your email address or name.")
    if len(set(password)) < 4:
        raise PasswordRefused("The password repeats too few characters; choose another.")


def temporary_password() -> str:
    """A random one-time password (about 120 bits), shown once; it must be changed at login."""
    return secrets.token_urlsafe(15)
