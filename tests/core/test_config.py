"""Settings refuse unsafe or impossible configuration."""

import pytest
from pydantic import ValidationError

from app.core.config import DEV_SECRET_KEY, Settings

STRONG_KEY = "k" * 40


def test_development_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        "DSR_ENV",
        "DSR_DATABASE_URL",
        "DSR_TIMEZONE",
        "DSR_HOLIDAY_COUNTRY",
        "DSR_HOLIDAY_SUBDIVISION",
        "DSR_WEBHOOK_ALLOW_PRIVATE",
        "DSR_DEMO",
    ]:
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.env == "development"
    assert settings.database_url == "sqlite+aiosqlite:///./dsr.db"
    assert settings.timezone == "Europe/London"
    assert (settings.holiday_country, settings.holiday_subdivision) == ("GB", "ENG")
    assert settings.allow_private_webhooks is True
    assert settings.demo is False
    assert settings.export_dir == "./exports"


def test_production_refuses_the_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSR_ENV", "production")
    monkeypatch.delenv("DSR_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="DSR_SECRET_KEY"):
        Settings()
    with pytest.raises(ValidationError, match="DSR_SECRET_KEY"):
        Settings(secret_key="short")


def test_production_accepts_a_strong_secret_and_refuses_private_webhooks() -> None:
    settings = Settings(
        env="production",
        secret_key=STRONG_KEY,
        smtp_host="mail.example",
        smtp_from="privacy@example.com",
        public_url="https://privacy.example.com",
    )
    assert settings.secret_key != DEV_SECRET_KEY
    assert settings.allow_private_webhooks is False


def test_production_refuses_a_weak_admin_secret() -> None:
    with pytest.raises(ValidationError, match="DSR_ADMIN_CLIENT_SECRET"):
        Settings(
            env="production",
            secret_key=STRONG_KEY,
            admin_client_id="admin",
            admin_client_secret="admin",
        )


PRODUCTION = {
    "env": "production",
    "secret_key": STRONG_KEY,
    "smtp_host": "mail.example",
    "smtp_from": "privacy@example.com",
}


def test_production_requires_the_https_public_url() -> None:
    with pytest.raises(ValidationError, match="DSR_PUBLIC_URL must be set in production"):
        Settings(**PRODUCTION)
    with pytest.raises(ValidationError, match="DSR_PUBLIC_URL must be an https://"):
        Settings(**PRODUCTION, public_url="http://privacy.example.com")
    settings = Settings(**PRODUCTION, public_url="https://privacy.example.com/dsr/")
    assert settings.public_url == "https://privacy.example.com/dsr"


def test_development_public_url_defaults_to_the_local_server() -> None:
    assert Settings().public_url == "http://127.0.0.1:8000"
    assert Settings(public_url="http://127.0.0.1:8300").public_url == "http://127.0.0.1:8300"


@pytest.mark.parametrize(
    "value",
    [
        "127.0.0.1:8000",
        "ftp://example.com",
        "https://",
        "https://example.com/?next=x",
        "https://u:p@example.com",
    ],
)
def test_a_public_url_that_could_not_start_a_link_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="DSR_PUBLIC_URL"):
        Settings(public_url=value)


@pytest.mark.parametrize("subdivision", ["ENG", "WLS", "SCT", "NIR"])
def test_uk_subdivisions_are_accepted(subdivision: str) -> None:
    assert Settings(holiday_subdivision=subdivision).holiday_subdivision == subdivision


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timezone", "Mars/Olympus", "DSR_TIMEZONE"),
        ("holiday_subdivision", "XYZ", "holiday calendar"),
        ("holiday_country", "ZZ", "holiday calendar"),
        ("env", "staging", "env"),
    ],
)
def test_invalid_values_are_refused(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**{field: value})  # type: ignore[arg-type]


def test_approval_required_is_a_comma_list_of_request_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DSR_APPROVAL_REQUIRED", raising=False)
    assert Settings().approval_required == []
    assert Settings().approval_four_eyes is False
    monkeypatch.setenv("DSR_APPROVAL_REQUIRED", " erasure, rectification ,erasure")
    assert Settings().approval_required == ["erasure", "rectification"]
    monkeypatch.setenv("DSR_APPROVAL_REQUIRED", "erasure,deletion")
    with pytest.raises(ValidationError, match="approval_required"):
        Settings()
