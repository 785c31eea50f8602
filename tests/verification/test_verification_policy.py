"""The verification policy and the pure parts of email codes: tables of cases, no database."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from app.core.config import Settings
from app.enums import RequestType, VerificationMethod
from app.models import DsrRequest
from app.requests import identity_policy
from app.requests.identity_policy import MethodNotAllowed, allowed_methods, ensure_method_allowed
from app.verification import service as verification
from app.verification.service import (
    alternatives_after_failed_document,
    code_hash,
    new_code,
    resend_wait_seconds,
)

EMAIL_CODE = "email_code"
DOCUMENT = "document"
ASSERTION = "identity_assertion"
ATTESTATION = "officer_attestation"

# fmt: off
# The default policy: True where the method may verify a request of the type.
DEFAULT_TABLE: dict[str, dict[str, bool]] = {
    #                 email_code         document        identity_assertion  officer_attestation
    "access":        {EMAIL_CODE: True,  DOCUMENT: True, ASSERTION: True,    ATTESTATION: False},
    "portability":   {EMAIL_CODE: True,  DOCUMENT: True, ASSERTION: True,    ATTESTATION: False},
    "erasure":       {EMAIL_CODE: True,  DOCUMENT: True, ASSERTION: True,    ATTESTATION: False},
    "rectification": {EMAIL_CODE: True,  DOCUMENT: True, ASSERTION: True,    ATTESTATION: False},
    "objection":     {EMAIL_CODE: True,  DOCUMENT: True, ASSERTION: True,    ATTESTATION: True},
    "restriction":   {EMAIL_CODE: True,  DOCUMENT: True, ASSERTION: True,    ATTESTATION: True},
}
# fmt: on
CELLS = [
    (request_type, method, allowed)
    for request_type, row in DEFAULT_TABLE.items()
    for method, allowed in row.items()
]


def test_the_table_covers_every_type_and_method() -> None:
    assert set(DEFAULT_TABLE) == set(RequestType)
    assert all(set(row) == set(VerificationMethod) for row in DEFAULT_TABLE.values())


@pytest.mark.parametrize(("request_type", "method", "allowed"), CELLS)
def test_default_policy(request_type: str, method: str, allowed: bool) -> None:
    settings = Settings()
    if allowed:
        ensure_method_allowed(settings, request_type, VerificationMethod(method))
        return
    with pytest.raises(MethodNotAllowed) as refused:
        ensure_method_allowed(settings, request_type, VerificationMethod(method))
    expected = [name for name, ok in DEFAULT_TABLE[request_type].items() if ok]
    assert refused.value.status == 422
    assert sorted(refused.value.extra["allowed_methods"]) == sorted(expected)
    assert all(name in refused.value.detail for name in expected)


def test_configured_types_replace_the_default_and_others_keep_it() -> None:
    settings = Settings(verification_policy={"access": [DOCUMENT], "objection": [EMAIL_CODE]})
    assert allowed_methods(settings, "access") == (VerificationMethod.DOCUMENT,)
    assert allowed_methods(settings, "objection") == (VerificationMethod.EMAIL_CODE,)
    assert (
        allowed_methods(settings, "erasure") == identity_policy.DEFAULT_POLICY[RequestType.ERASURE]
    )
    with pytest.raises(MethodNotAllowed, match="allowed methods: document"):
        ensure_method_allowed(settings, "access", VerificationMethod.IDENTITY_ASSERTION)


def test_policy_is_read_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSR_VERIFICATION_POLICY", '{"access": ["email_code", "document"]}')
    assert Settings().verification_policy == {"access": [EMAIL_CODE, DOCUMENT]}


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"acess": [EMAIL_CODE]}, "unknown request type 'acess'"),
        ({"access": ["sms"]}, "unknown method 'sms' for access"),
        ({"objection": []}, "objection lists no method"),
    ],
)
def test_invalid_policies_are_refused_at_load(policy: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as refused:
        Settings(verification_policy=policy)
    assert "DSR_VERIFICATION_POLICY" in str(refused.value)


def test_repeated_methods_are_kept_once() -> None:
    settings = Settings(verification_policy={"access": [DOCUMENT, DOCUMENT, EMAIL_CODE]})
    assert settings.verification_policy == {"access": [DOCUMENT, EMAIL_CODE]}


# ---------------------------------------------------------------- codes


def test_codes_are_six_zero_padded_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verification.secrets, "randbelow", lambda _bound: 42)
    assert new_code() == "000042"
    monkeypatch.undo()
    codes = {new_code() for _ in range(200)}
    assert all(len(code) == 6 and code.isascii() and code.isdigit() for code in codes)
    assert len(codes) > 190


def test_code_hash_is_keyed_and_bound_to_the_request() -> None:
    request_id, other_id = uuid.uuid4(), uuid.uuid4()
    digest = code_hash("123456", request_id=request_id, secret_key="k" * 40)
    assert len(digest) == 64 and "123456" not in digest
    assert digest == code_hash("123456", request_id=request_id, secret_key="k" * 40)
    assert digest != code_hash("123456", request_id=other_id, secret_key="k" * 40)
    assert digest != code_hash("123456", request_id=request_id, secret_key="j" * 40)
    assert digest != code_hash("123457", request_id=request_id, secret_key="k" * 40)


T0 = datetime(2026, 9, 3, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("sent", "now", "wait"),
    [
        ([], 0, 0),
        ([0], 0, 60),
        ([0], 30, 30),
        ([0], 59.5, 1),
        ([0], 60, 0),
        ([0, 60, 120, 180], 240, 0),
        ([0, 60, 120, 180, 240], 300, 3300),
        ([0, 60, 120, 180, 240], 3599, 1),
        ([0, 60, 120, 180, 240], 3600, 0),
        # Six in the window (possible after a lowered limit): two must leave it.
        ([0, 60, 120, 180, 240, 300], 400, 3660 - 400),
        # Cooldown and hourly limit both apply: the longer wait wins.
        ([3000, 3060, 3120, 3180, 3590], 3600, 3000 + 3600 - 3600),
    ],
)
def test_resend_wait(sent: list[float], now: float, wait: int) -> None:
    settings = Settings()
    assert resend_wait_seconds([at(s) for s in sent], settings=settings, now=at(now)) == wait


def test_resend_wait_follows_the_settings() -> None:
    settings = Settings(verification_resend_cooldown=0, verification_max_sends_per_hour=2)
    assert resend_wait_seconds([at(0)], settings=settings, now=at(0)) == 0
    assert resend_wait_seconds([at(0), at(1)], settings=settings, now=at(2)) == 3598


# ---------------------------------------------------------------- what to send instead


def _request(**values: object) -> DsrRequest:
    return DsrRequest(**{"type": "access", "subject_email": "jane@example.com", **values})


def test_alternatives_after_a_failed_document() -> None:
    settings = Settings()
    assert alternatives_after_failed_document(settings, _request(), "passport") == [
        "a copy of your valid photocard driving licence",
        "a one-time code that we email to the address you gave us",
    ]
    assert alternatives_after_failed_document(settings, _request(), "driving_licence")[0] == (
        "a copy of your valid passport"
    )
    # No email address, no code; a policy without email codes, no code either.
    without_email = _request(subject_email=None)
    assert len(alternatives_after_failed_document(settings, without_email, "passport")) == 1
    documents_only = Settings(verification_policy={"access": [DOCUMENT]})
    assert len(alternatives_after_failed_document(documents_only, _request(), "passport")) == 1
