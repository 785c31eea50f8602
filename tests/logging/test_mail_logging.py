"""Mail without an SMTP relay is logged: with its body (the verification code) only when
DSR_ENV=development; a production process never writes a body or a code to its logs."""

import uuid

import pytest

from app.core.config import Settings
from app.core.time import utcnow
from app.mail import sender
from app.mail.messages import MessageKind
from tests.conftest import make_settings
from tests.logging.conftest import JsonLog

CODE = "482913"


def _claim() -> sender.ClaimedMail:
    return sender.ClaimedMail(
        message_id=uuid.uuid4(),
        kind=MessageKind.VERIFICATION_CODE.value,
        subject="Your verification code",
        recipient="jane.doe@example.com",
        text=f"Your code is\n\n    {CODE}\n\nIt expires in 15 minutes.\n",
        html=None,
        created_at=utcnow(),
        trace_id="verify-7",
    )


def _settings(env: str) -> Settings:
    development = make_settings("sqlite+aiosqlite:///unused.db", smtp_host=None)
    # Production refuses to start without SMTP; should that check ever be bypassed, the
    # sender must still keep bodies out of the log.
    return development.model_copy(update={"env": env})


@pytest.mark.parametrize("env", ["development", "production"])
async def test_codes_are_logged_only_in_development(env: str, json_log: JsonLog) -> None:
    result = await sender.send(_claim(), settings=_settings(env))

    assert result.sent
    (line,) = json_log.entries("app.mail")
    assert line["request_id"] == "verify-7"
    assert "j***@example.com" in line["message"]
    assert "jane.doe" not in json_log.stream.getvalue()
    if env == "development":
        assert CODE in line["message"]
    else:
        assert CODE not in json_log.stream.getvalue()
        assert "expires in 15 minutes" not in line["message"]
        assert "only when DSR_ENV=development" in line["message"]


def test_production_cannot_start_without_a_relay() -> None:
    with pytest.raises(ValueError, match="DSR_SMTP_HOST"):
        make_settings(
            "sqlite+aiosqlite:///unused.db",
            env="production",
            secret_key="x" * 40,
            admin_client_secret="y" * 30,
            public_url="https://dsr.example",
        )
