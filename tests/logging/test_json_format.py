"""The JSON formatter and the logging set-up `dsr serve` and `dsr worker` apply."""

import json
import logging
import subprocess
import sys
from pathlib import Path

from app.core.logs import JsonFormatter, RequestIdFilter, bound_request_id, logging_config
from tests.logging.conftest import REQUIRED_KEYS

ROOT = Path(__file__).resolve().parents[2]


def _format(record: logging.LogRecord) -> dict[str, object]:
    RequestIdFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    return dict(json.loads(line))


def test_a_line_has_time_level_logger_message_and_request_id() -> None:
    record = logging.LogRecord("app.worker", logging.INFO, __file__, 1, "a\nb %s", ("c",), None)
    record.created = 1_796_000_000.25
    with bound_request_id("abc"):
        line = _format(record)

    assert line == {
        "time": "2026-11-30T00:53:20.250Z",
        "level": "INFO",
        "logger": "app.worker",
        "message": "a\nb c",
        "request_id": "abc",
    }


def test_outside_a_request_the_id_is_null_and_extras_are_kept() -> None:
    record = logging.LogRecord("app.access", logging.INFO, __file__, 1, "GET", None, None)
    record.route = "/healthz"
    line = _format(record)
    assert line["request_id"] is None and line["route"] == "/healthz"


def test_an_exception_is_logged_without_its_message() -> None:
    address = "jane.doe@example.com"
    try:
        raise KeyError(address)
    except KeyError:
        record = logging.LogRecord(
            "app", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    line = _format(record)
    assert line["exc_type"] == "KeyError"
    assert "jane.doe" not in json.dumps(line)


def test_uvicorn_and_the_service_log_json_lines_under_the_serve_config() -> None:
    """What `dsr serve` hands uvicorn (applied in each of its worker processes)."""
    script = (
        "import logging, uvicorn\n"
        "from app.core.logs import logging_config\n"
        "config = uvicorn.Config('app.main:app', log_config=logging_config('json'))\n"
        "logging.getLogger('uvicorn.error').info('Started server process [%d]', 1)\n"
        "logging.getLogger('app.worker').info('worker started')\n"
        "logging.getLogger('httpx').info('HTTP Request: GET https://x/?email=a@b.c')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["logger"] for line in lines] == ["uvicorn.error", "app.worker"]
    assert all(set(line) >= REQUIRED_KEYS for line in lines)


def test_text_format_stays_as_it_was() -> None:
    config = logging_config("text")
    assert config["formatters"]["service"] == {
        "format": "%(asctime)s %(levelname)s %(name)s %(message)s"
    }
