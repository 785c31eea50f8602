"""Logs as a collector reads them: a JSON handler on the root logger, lines kept in memory."""

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from app.core.logs import QUIET_LOGGERS, JsonFormatter, RequestIdFilter

# The tests' own servers (aiosmtpd's SMTP conversation log), not the service.
HARNESS_LOGGERS = {"mail.log"}
REQUIRED_KEYS = {"time", "level", "logger", "message", "request_id"}


class JsonLog:
    """Every line the service logged while the fixture was active, as written."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    @property
    def service_lines(self) -> list[str]:
        return [line for line in self.lines if json.loads(line)["logger"] not in HARNESS_LOGGERS]

    def entries(self, logger: str | None = None) -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in self.service_lines]
        return [entry for entry in parsed if logger is None or entry["logger"] == logger]


@pytest.fixture
def json_log() -> Iterator[JsonLog]:
    log = JsonLog()
    handler = logging.StreamHandler(log.stream)
    # As `dsr serve` and `dsr worker` set it up (app.core.logs.logging_config).
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield log
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name, previous in quiet.items():
            logging.getLogger(name).setLevel(previous)
