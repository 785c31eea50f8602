"""Shared OpenAPI fragments for routes."""

from typing import Any

from pydantic import BaseModel


class Problem(BaseModel):
    """RFC 9457 problem details; `errors` lists field errors on validation failures."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def _problem(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {"application/problem+json": {}},
    }


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem("Missing, invalid or expired access token."),
    403: _problem("Your role does not allow this."),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _problem("No such request, or it is not visible to you.")
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: _problem("Not allowed in the request's current status.")
}
VALIDATION: dict[int | str, dict[str, Any]] = {
    422: _problem("The body or parameters are invalid; see `errors`.")
}
