"""A request's JSON body, read once and judged the same way on every route.

Refused, after the caller is authenticated (routes check the token first): text holding NUL
characters (PostgreSQL can neither store nor compare it), an object giving one key twice
(which value was meant would be a guess), and anything that is not JSON in UTF-8. Each gets
the one problem shape clients already know: ``errors`` with ``loc``, ``msg`` and ``type``.
"""

import json
import re
from typing import Any

from app.core.errors import AppError, UnprocessableEntity

# A JSON \u0000 escape: an odd number of backslashes before "u0000" (an even number is an
# escaped backslash followed by the literal text "u0000").
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or any ``application/...+json``, parameters ignored."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class MalformedJson(AppError):
    status = 400
    title = "Malformed JSON"
    slug = "malformed-json"


class _DuplicateKey(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey
        obj[key] = value
    return obj


class InvalidBody(UnprocessableEntity):
    """Shaped like every other validation failure, so clients read ``errors`` one way."""

    title = "Validation failed"
    slug = "validation"


def _invalid(message: str, *, msg: str, kind: str) -> InvalidBody:
    return InvalidBody(message, extra={"errors": [{"loc": ["body"], "msg": msg, "type": kind}]})


def parse_json_body(body: bytes) -> Any:
    """The parsed body; 400 if it is not JSON, 422 for NUL characters or a repeated key."""
    if b"\x00" in body or _ESCAPED_NUL.search(body):
        raise _invalid(
            "Text fields must not contain NUL characters.",
            msg="must not contain NUL characters",
            kind="nul",
        )
    try:
        return json.loads(body, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey:
        # The key itself is not named: an unknown key could be an address.
        raise _invalid(
            "An object in the body gives the same key twice; send each key once.",
            msg="duplicate key",
            kind="duplicate_key",
        ) from None
    except (ValueError, RecursionError) as error:
        location: list[str] = ["body"]
        if isinstance(error, json.JSONDecodeError):
            location.append(str(error.pos))
        raise MalformedJson(
            "The request body is not valid JSON.",
            extra={"errors": [{"loc": location, "msg": "malformed JSON", "type": "json_invalid"}]},
        ) from None
