"""Log lines for people and for collectors: the request id, and one JSON object per line.

The request id names one HTTP request (``X-Request-ID``, or one we make up) in every line it
causes: the access line, the API's own lines, and the worker's lines for the webhook events,
mail and fulfilment jobs it queued (their ``trace_id`` column carries it across). It lives in
a context variable, so code logs as usual and the id follows across ``await`` and tasks.
"""

import json
import logging
import logging.config
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from app.core.tracebacks import traceback_without_messages

LogFormat = Literal["text", "json"]

# A caller's id is kept only when it cannot smuggle anything into a log line or a header.
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")
MAX_REQUEST_ID_LENGTH = 128

_request_id: ContextVar[str | None] = ContextVar("dsr_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Attributes every LogRecord has: anything else on a record was passed with ``extra=``.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
# Libraries whose INFO lines name URLs (see logging_config).
QUIET_LOGGERS = ("httpx", "httpcore")
# Fields the access line adds (``extra=``), in the order a reader expects them.
ACCESS_FIELDS = ("method", "route", "status", "duration_ms")


def current_request_id() -> str | None:
    """The id of the HTTP request (or queued work) being handled here, if any."""
    return _request_id.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_request_id(raw: bytes | None) -> str:
    """The caller's ``X-Request-ID`` when sane (<= 128 of ``[A-Za-z0-9._-]``), else a new one."""
    if raw and _SANE_REQUEST_ID.fullmatch(raw):
        return raw.decode("ascii")
    return new_request_id()


def set_request_id(value: str | None) -> Any:
    """Bind ``value`` for this context; returns the token for :func:`reset_request_id`."""
    return _request_id.set(value)


def reset_request_id(token: Any) -> None:
    _request_id.reset(token)


@contextmanager
def bound_request_id(value: str | None) -> Iterator[None]:
    """Log under ``value`` inside the block (the worker, for a row a request queued)."""
    token = _request_id.set(value)
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id (``None`` outside any request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


def _iso_utc(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, then any extras.

    An exception adds its type and a traceback without messages: an error's message can quote
    personal data (``app.core.tracebacks``).
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or _request_id.get(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in line:
                line[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            line["exc_type"] = type(record.exc_info[1]).__name__
            line["traceback"] = traceback_without_messages(record.exc_info[1])
        return json.dumps(line, default=str, ensure_ascii=False)


def logging_config(log_format: LogFormat, *, level: str = "INFO") -> dict[str, Any]:
    """``logging.config.dictConfig`` for the service: one stderr handler on the root logger.

    uvicorn's own loggers lose their handlers and propagate to it, so the server's lines have
    the same shape as ours (``dsr serve`` hands this to uvicorn, which applies it in each
    worker process).
    """
    formatter: dict[str, Any] = (
        {"()": "app.core.logs.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "app.core.logs.RequestIdFilter"}},
        "formatters": {"service": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "service",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            **{
                name: {"handlers": [], "propagate": True, "level": level}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
            },
            # httpx logs every URL it calls at INFO: a source's or a webhook's URL can carry a
            # token or, in a query, an identity. Their failures are logged by our own lines.
            **{name: {"level": "WARNING"} for name in QUIET_LOGGERS},
        },
    }


def configure_logging(log_format: LogFormat, *, level: str = "INFO") -> None:
    """Apply :func:`logging_config` to this process (``dsr worker``, ``dsr serve``)."""
    logging.config.dictConfig(logging_config(log_format, level=level))
