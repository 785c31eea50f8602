"""Passwords: the Argon2id format, rehashing, and the policy's refusals."""

import pytest
from argon2 import PasswordHasher

from app.accounts import passwords, totp
from app.accounts.passwords import PasswordRefused, check_policy


def test_hashes_are_argon2id_and_verify() -> None:
    stored = passwords.hash_password("a long enough passphrase")
    assert stored.startswith("$argon2id$v=19$m=")
    assert passwords.verify_password("a long enough passphrase", stored)
    assert not passwords.verify_password("another long passphrase", stored)
    assert not passwords.verify_password("a long enough passphrase", None)
    assert not passwords.verify_password("anything at all here", "not-a-hash")


def test_a_hash_made_with_other_parameters_needs_rehashing() -> None:
    weaker = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("passphrase xyz")
    assert passwords.needs_rehash(weaker)
    assert not passwords.needs_rehash(passwords.hash_password("passphrase xyz"))


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short pass", "at least 12"),
        ("1234567890123", "common"),
        ("Password1234", "common"),
        ("1qaz2wsx3edc", "common"),
        ("Q1w2e3r4t5y6", "common"),
        ("qwerty123456", "common"),
        ("olivia.officer-2026!", "email address or name"),
        ("my name is Sanderson!", "email address or name"),
        ("aaaaaaaaaaaaaaaa", "repeats"),
    ],
)
def test_policy_refusals(password: str, reason: str) -> None:
    with pytest.raises(PasswordRefused, match=reason):
        check_policy(password, email="olivia.officer@example.com", name="Olivia Sanderson")


def test_a_long_uncommon_password_is_accepted() -> None:
    check_policy("tulip orbit canyon 7", email="olivia.officer@example.com", name="Olivia")


def test_the_common_list_ships_with_the_package() -> None:
    common = passwords.common_passwords()
    assert len(common) > 10_000
    assert {"password", "123456", "qwerty"} <= common


def test_temporary_passwords_meet_the_policy() -> None:
    for _ in range(20):
        check_policy(passwords.temporary_password(), email="a.b@example.com", name="A B")


def test_totp_accepts_one_step_either_side_and_never_the_same_step_twice() -> None:
    from datetime import UTC, datetime, timedelta

    secret = totp.new_secret()
    now = datetime(2026, 12, 7, 12, 0, 10, tzinfo=UTC)
    code = totp.code_at(secret, now)
    step = totp.matching_step(secret, code, now=now, after_step=None)
    assert step is not None
    assert totp.matching_step(secret, code, now=now, after_step=step) is None
    earlier = totp.code_at(secret, now - timedelta(seconds=30))
    assert totp.matching_step(secret, earlier, now=now, after_step=None) == step - 1
    too_old = totp.code_at(secret, now - timedelta(seconds=90))
    assert totp.matching_step(secret, too_old, now=now, after_step=None) is None
    assert totp.matching_step(secret, "abcdef", now=now, after_step=None) is None
    assert "otpauth://totp/" in totp.provisioning_uri(secret, email="a@example.com")
