"""Settings read from the environment (prefix ``DSR_``)."""

from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.core.schemas import normalise_email
from app.deadlines import validate_calendar
from app.enums import RequestType, VerificationMethod

DEV_SECRET_KEY = "dev-only-secret-key-change-me"
# Where a development service is reached when nothing says otherwise (`dsr serve`'s default).
DEV_PUBLIC_URL = "http://127.0.0.1:8000"


class Settings(BaseSettings):
    """Service configuration; see the configuration table in the README."""

    model_config = SettingsConfigDict(env_prefix="DSR_", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./dsr.db"
    secret_key: str = DEV_SECRET_KEY
    secret_key_previous: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="retired keys (comma list) still accepted for reading while "
        "DSR_SECRET_KEY signs and encrypts everything new; remove after `dsr keys rotate`",
    )
    admin_client_id: str | None = None
    admin_client_secret: str | None = None
    timezone: str = "Europe/London"
    holiday_country: str = "GB"
    holiday_subdivision: str | None = "ENG"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = Field(default=False, description="implicit TLS (usually port 465)")
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout: float = Field(default=30.0, gt=0)
    mail_template_dir: str | None = Field(
        default=None, description="folder whose templates override the built-in ones"
    )
    mail_lease_seconds: float = Field(default=120.0, gt=0)
    webhook_allow_private: bool | None = None
    demo: bool = False
    demo_crm_path: str = "./demo_crm.db"
    export_dir: str = "./exports"
    export_ttl_hours: int = Field(
        default=168, ge=1, le=2160, description="download links and files live this long"
    )
    public_url: str = Field(
        default="",
        description="the service's address as data subjects reach it (links in mail); "
        "required in production; in development `dsr serve` derives it from --host/--port",
    )
    processing_register_path: str | None = Field(
        default=None, description="YAML or JSON processing register; default: the built-in one"
    )
    fulfilment_batch_size: int = Field(default=2000, ge=1, le=100_000)
    fulfilment_lease_seconds: float = Field(default=900.0, gt=0)
    fulfilment_max_attempts: int = Field(default=5, ge=1, le=50)
    source_timeout: float = Field(default=30.0, gt=0, le=600)
    approval_required: Annotated[list[RequestType], NoDecode] = Field(
        default_factory=list,
        description="request types (comma list, e.g. erasure,rectification) whose fulfilment "
        "waits for an officer's approve; default none",
    )
    approval_four_eyes: bool = Field(
        default=False,
        description="the approver must be neither the officer who assigned the case nor "
        "the one who last acted on it",
    )
    verification_code_ttl: int = Field(default=900, ge=60, le=86400, description="seconds")
    verification_max_attempts: int = Field(default=5, ge=1, le=20)
    verification_resend_cooldown: int = Field(default=60, ge=0, description="seconds")
    verification_max_sends_per_hour: int = Field(default=5, ge=1, le=50)
    verification_policy: dict[str, list[str]] = Field(
        default_factory=dict,
        description="per request type, the identity methods accepted (JSON); unset types "
        "keep the defaults",
    )
    verification_expiry_days: int = 30
    verification_reminder_days: int = Field(
        default=7,
        ge=0,
        le=365,
        description="days after an unverified request is logged that its subject is reminded, "
        "once, to confirm their identity (0: never)",
    )
    access_token_ttl: int = Field(default=3600, ge=60, le=86400, description="seconds")
    client_refresh_interval: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="seconds between each API process's re-reads of the active clients: a "
        "disabled, deleted or rotated client's tokens are refused at most this long after",
    )
    session_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=1440,
        description="a console session unused this long ends (the person logs in again)",
    )
    session_max_hours: int = Field(
        default=12, ge=1, le=168, description="a console session ends this long after login"
    )
    max_body_bytes: int = 1_048_576
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: one readable line per event; json: one JSON object per line "
        "(time, level, logger, message, request_id; the access line adds method, route, "
        "status, duration_ms) for log collectors",
    )
    db_pool_size: int = 10
    due_soon_days: int = Field(default=7, ge=0, le=60)
    alert_email: str | None = Field(
        default=None,
        max_length=320,
        description="where officers are alerted (failed fulfilment, disabled webhook endpoint, "
        "overdue request): one mail per event; unset: no alert mail",
    )
    # Background work (outbox fan-out, webhook delivery, deadline sweeps).
    run_worker_in_process: bool | None = Field(
        default=None, description="default: on for SQLite (one machine), off for PostgreSQL"
    )
    worker_poll_interval: float = Field(default=0.25, gt=0, le=60)
    worker_batch_size: int = Field(default=200, ge=1, le=5000)
    worker_concurrency: int = Field(default=32, ge=1, le=1000)
    sweep_interval: float = Field(default=60.0, gt=0)
    webhook_timeout: float = Field(default=15.0, gt=0, le=60)
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    webhook_disable_after_days: float = Field(default=5.0, gt=0)
    # Prometheus metrics (app.metrics, docs/operations.md "Metrics").
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token Prometheus sends to GET /metrics (at least 16 characters); "
        "unset: no /metrics route at all (404)",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="port where `dsr worker` serves its own /metrics (needs "
        "DSR_METRICS_TOKEN); unset: off",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", description="interface the worker's metrics port listens on"
    )
    # The data subject's status page (app.status_page) and the link to it in every mail.
    status_link_days: int = Field(
        default=90, ge=1, le=3650, description="days a status-page link works after its mail"
    )
    status_page_rate_limit: int = Field(
        default=30,
        ge=1,
        le=10_000,
        description="status-page hits and posts allowed per minute, per client address and "
        "per link",
    )
    brand_name: str = Field(
        default="Privacy team", min_length=1, max_length=100, description="status page heading"
    )
    brand_colour: str = Field(
        default="#1d4ed8",
        pattern=r"^#[0-9a-fA-F]{6}$",
        description="status page accent colour, #rrggbb",
    )
    page_template_dir: str | None = Field(
        default=None, description="folder whose status-page templates override the built-in ones"
    )

    @field_validator("public_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        """Refuse what could not start a link: it must be an absolute http(s) address."""
        value = value.strip().rstrip("/")
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("DSR_PUBLIC_URL must be an absolute http:// or https:// address")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("DSR_PUBLIC_URL must not carry a query, fragment or credentials")
        return value

    @field_validator("secret_key_previous", mode="before")
    @classmethod
    def _key_list(cls, value: Any) -> Any:
        """Keys as the environment gives them: comma-separated, blanks ignored."""
        if isinstance(value, str):
            return list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
        return value

    @field_validator("approval_required", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """``erasure,rectification`` as the environment gives it; a list as code does."""
        if isinstance(value, str):
            return list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
        return value

    @field_validator("alert_email")
    @classmethod
    def _valid_alert_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return normalise_email(value.strip())

    @field_validator("verification_policy")
    @classmethod
    def _known_types_and_methods(cls, policy: dict[str, list[str]]) -> dict[str, list[str]]:
        """Refuse typos at start-up: an unknown name would silently keep the default."""
        types = [str(value) for value in RequestType]
        methods = [str(value) for value in VerificationMethod]
        checked: dict[str, list[str]] = {}
        for request_type, allowed in policy.items():
            if request_type not in types:
                raise ValueError(
                    f"DSR_VERIFICATION_POLICY: unknown request type {request_type!r} "
                    f"(known: {', '.join(types)})"
                )
            unknown = [method for method in allowed if method not in methods]
            if unknown:
                raise ValueError(
                    f"DSR_VERIFICATION_POLICY: unknown method {unknown[0]!r} for "
                    f"{request_type} (known: {', '.join(methods)})"
                )
            if not allowed:
                raise ValueError(
                    f"DSR_VERIFICATION_POLICY: {request_type} lists no method, so its "
                    "requests could never be verified"
                )
            checked[request_type] = list(dict.fromkeys(allowed))
        return checked

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> "Settings":
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"DSR_TIMEZONE {self.timezone!r} is not a known time zone") from exc
        validate_calendar(self.holiday_country, self.holiday_subdivision)
        # A lease shorter than a request would let a second worker resend mid-delivery.
        if self.webhook_lease_seconds <= self.webhook_timeout:
            raise ValueError("DSR_WEBHOOK_LEASE_SECONDS must exceed DSR_WEBHOOK_TIMEOUT")
        # The same for mail: a lease expiring mid-send would let a second worker send again.
        if self.mail_lease_seconds <= self.smtp_timeout:
            raise ValueError("DSR_MAIL_LEASE_SECONDS must exceed DSR_SMTP_TIMEOUT")
        if self.metrics_token is not None:
            if not self.metrics_token.get_secret_value():
                self.metrics_token = None  # DSR_METRICS_TOKEN= (empty) means unset
            elif len(self.metrics_token.get_secret_value()) < 16:
                raise ValueError("DSR_METRICS_TOKEN must be at least 16 characters")
        if self.worker_metrics_port is not None and self.metrics_token is None:
            raise ValueError(
                "DSR_WORKER_METRICS_PORT needs DSR_METRICS_TOKEN: the worker's figures are "
                "served behind the same bearer token as the API's"
            )
        if self.smtp_tls and self.smtp_starttls:
            raise ValueError(
                "DSR_SMTP_TLS (implicit TLS) and DSR_SMTP_STARTTLS are exclusive: choose one"
            )
        if self.env == "production":
            if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
                raise ValueError(
                    "DSR_SECRET_KEY must be set to a random value of at least 32 characters "
                    "in production"
                )
            # A "previous" key equal to the current one is a rotation that never happened.
            if self.secret_key in self.secret_key_previous:
                raise ValueError(
                    "DSR_SECRET_KEY_PREVIOUS must not contain the current DSR_SECRET_KEY"
                )
            if self.admin_client_secret is not None and len(self.admin_client_secret) < 24:
                raise ValueError("DSR_ADMIN_CLIENT_SECRET must be at least 24 characters")
            # Email-code verification is on by default: without SMTP no code could arrive.
            if self.smtp_host is None or self.smtp_from is None:
                raise ValueError(
                    "DSR_SMTP_HOST and DSR_SMTP_FROM must be set in production (verification "
                    "codes and notices to data subjects are sent by email)"
                )
            # Every link in mail to a subject starts with it: a guess would send them elsewhere.
            if not self.public_url:
                raise ValueError(
                    "DSR_PUBLIC_URL must be set in production: the https address data subjects "
                    "reach the service at (links in mail start with it)"
                )
            if not self.public_url.startswith("https://"):
                raise ValueError("DSR_PUBLIC_URL must be an https:// address in production")
        if not self.public_url:
            self.public_url = DEV_PUBLIC_URL
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def reading_keys(self) -> tuple[str, ...]:
        """The current key, then each retired one: what signatures and ciphertexts may be
        under. Everything new uses ``secret_key`` alone."""
        previous = (key for key in self.secret_key_previous if key != self.secret_key)
        return (self.secret_key, *previous)

    @property
    def worker_in_process(self) -> bool:
        if self.run_worker_in_process is None:
            return self.database_url.startswith("sqlite")
        return self.run_worker_in_process

    @property
    def secure_cookies(self) -> bool:
        """Console cookies only over https: in production, or when the public URL is https."""
        return self.env == "production" or self.public_url.startswith("https://")

    @property
    def allow_private_webhooks(self) -> bool:
        if self.webhook_allow_private is None:
            return self.env == "development"
        return self.webhook_allow_private


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_problems(error: ValidationError) -> list[str]:
    """One line per configuration problem, naming the variable (no traceback, no value)."""
    lines = []
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        variable = f"DSR_{field.upper()}: " if field else ""
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"invalid configuration: {variable}{message}")
    return lines
