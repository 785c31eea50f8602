"""The OpenAPI document, completed with the answers every route can give besides its own.

Routes declare what is particular to them; what holds everywhere is written here once, so a
generated client meets no answer the document does not promise:

- every error is ``application/problem+json`` (FastAPI would also offer ``application/json``,
  and its default 422 body shape, which the service never sends);
- a route that takes a body can answer 400 (unreadable body), 413 (too large) and 415 (not
  its media type);
- every route under ``/v1`` can answer 503 while the database cannot serve.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.core.errors import PROBLEM_JSON

PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}
BODY_ERRORS = {
    "400": "The body is not readable: malformed JSON (or form), or not UTF-8.",
    "413": "The body is larger than DSR_MAX_BODY_BYTES.",
    "415": "The body is not in the media type this route reads.",
}
UNAVAILABLE = "The database cannot serve right now; retry after `Retry-After` seconds."
# FastAPI's own validation shapes: the service answers with Problem instead.
UNUSED_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": dict(PROBLEM_SCHEMA)}}


def complete_responses(document: dict[str, Any]) -> dict[str, Any]:
    """Add the shared answers to every operation of ``document`` (in place; returned)."""
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if "requestBody" in operation:
                for status, description in BODY_ERRORS.items():
                    responses.setdefault(status, {"description": description})
            if path.startswith("/v1/"):
                responses.setdefault("503", {"description": UNAVAILABLE})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = _problem_content()
    schemas = document.get("components", {}).get("schemas", {})
    for name in UNUSED_SCHEMAS:
        schemas.pop(name, None)
    return document


def install_complete_openapi(app: FastAPI) -> None:
    """Serve ``app``'s document completed by ``complete_responses`` (built once, cached)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_responses(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
