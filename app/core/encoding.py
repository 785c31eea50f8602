"""Values as export text: JSON values and CSV cells, a whole column at a time.

Shared by the export packs and the reports' CSV register, so both neutralise formulas alike.

Batches are encoded column by column: one type check per column picks a chain of C-level
conversions (``map(date.isoformat, ...)``) for the whole column, and rows are then assembled
with ``str.join`` / ``%``. Only columns mixing types go value by value.

Sources that encode their rows themselves (PostgreSQL's COPY, ``sources.pg_copy``) follow
the same rules; docs/exports.md lists the small differences.
"""

import base64
import json
import math
import operator
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

__all__ = [
    "csv_column",
    "csv_lines",
    "csv_text",
    "encode_basestring",
    "json_column",
    "json_default",
    "json_text",
    "neutralise",
    "utf8",
]

_NoneType = type(None)
_BOOL_TEXT = {True: "true", False: "false"}
_NON_FINITE = frozenset({"nan", "inf", "-inf"})
_quote = '"%s"'.__mod__

ColumnEncoder = Callable[[Sequence[Any]], Iterable[str]]


def json_default(value: Any) -> Any:
    """JSON for values the encoder does not know: ISO dates, exact decimals, base64 bytes."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _json_safe(value: Any) -> Any:
    """Slow path for what the encoder refused: non-finite floats, odd keys."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {
            key if isinstance(key, str) else str(json_default(key)): _json_safe(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


_ENCODER = json.JSONEncoder(
    default=json_default, allow_nan=False, ensure_ascii=False, separators=(",", ":")
)


def json_text(value: Any) -> str:
    """Any value as JSON text (the per-value path)."""
    try:
        return _ENCODER.encode(value)
    except (ValueError, TypeError):
        return _ENCODER.encode(_json_safe(value))


def utf8(text: str) -> bytes:
    # A lone surrogate (undecodable text from a source) becomes its valid JSON escape.
    return text.encode("utf-8", "backslashreplace")


def _json_floats(values: Sequence[float]) -> Iterable[str]:
    cells = list(map(float.__repr__, values))
    # NaN and infinities are not JSON: they become strings.
    return cells if _NON_FINITE.isdisjoint(cells) else list(map(json_text, values))


_JSON_COLUMNS: dict[type, ColumnEncoder] = {
    str: lambda values: map(encode_basestring, values),
    int: lambda values: map(int.__repr__, values),
    float: _json_floats,
    bool: lambda values: map(_BOOL_TEXT.__getitem__, values),
    datetime: lambda values: map(_quote, map(datetime.isoformat, values)),
    date: lambda values: map(_quote, map(date.isoformat, values)),
    time: lambda values: map(_quote, map(time.isoformat, values)),
    Decimal: lambda values: map(_quote, values),
    uuid.UUID: lambda values: map(_quote, values),
}


# Types whose equal values always print the same (unlike 1.0/1.00 or two time zones).
_SAME_TEXT_WHEN_EQUAL = frozenset({str, int, bool, date, uuid.UUID})


def _encode_column(
    values: Sequence[Any],
    encoders: dict[type, ColumnEncoder],
    one_value: Callable[[Any], str],
    null: str,
) -> Sequence[str]:
    """A column's cells: a whole-column encoder when the column holds one type (and nulls)."""
    kinds = set(map(type, values))
    has_null = _NoneType in kinds
    kinds.discard(_NoneType)
    if not kinds:
        return [null] * len(values)
    kind = next(iter(kinds)) if len(kinds) == 1 else None
    encode = encoders.get(kind) if kind is not None else None
    if encode is None:
        return [null if value is None else one_value(value) for value in values]
    if kind in _SAME_TEXT_WHEN_EQUAL and len(set(values[:64])) <= 16:
        # Few distinct values (the subject's own email on every row, a status, a date):
        # encode each once and look the rest up.
        distinct = dict.fromkeys(values)
        distinct.pop(None, None)
        lookup = dict(zip(distinct, encode(list(distinct)), strict=True))
        lookup[None] = null
        return list(map(lookup.__getitem__, values))
    if not has_null:
        return list(encode(values))
    encoded = iter(encode([value for value in values if value is not None]))
    return [null if value is None else next(encoded) for value in values]


def json_column(values: Sequence[Any]) -> Sequence[str]:
    """A column's values as JSON texts (``null`` for None)."""
    return _encode_column(values, _JSON_COLUMNS, json_text, "null")


# Text a spreadsheet would run as a formula (OWASP "CSV injection"): "=" or "@", or "+" or
# "-" unless a plain number follows ("+441632960001", "-12.5"), after any whitespace some
# spreadsheets skip. Leading apostrophes are looked through too, so that the prefix can be
# undone exactly (docs/exports.md). sources.pg_copy applies the same pattern in SQL.
_FORMULA = r"'*[\t\r\n ]*(?:[=@]|[-+](?![0-9]+(?:\.[0-9]+)?{end}))"
FORMULA = re.compile(_FORMULA.format(end=r"\Z"))
# What such text can start with: a cheap test before the pattern.
FORMULA_FIRST = ("'", "\t", "\r", "\n", " ", "=", "@", "+", "-")
# The same over a whole column joined by NULs: a cell that may start a formula, then the
# pattern itself (a NUL ends a number as the end of the text does).
_COLUMN_MAY_HOLD_FORMULA = re.compile("\x00[" + re.escape("".join(FORMULA_FIRST)) + "]")
_COLUMN_FORMULA = re.compile("\x00" + _FORMULA.format(end=r"(?:\x00|\Z)"))
_CSV_QUOTE = re.compile('[",\r\n]')


def neutralise(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would run as a formula."""
    return "'" + text if text.startswith(FORMULA_FIRST) and FORMULA.match(text) else text


def csv_text(text: str) -> str:
    """A text cell: neutralised, then quoted per RFC 4180 when it needs to be."""
    text = neutralise(text)
    if _CSV_QUOTE.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def _holds_formulas(values: Sequence[str], joined: str) -> bool:
    """Whether any of the column's texts is one ``neutralise`` changes (at C speed)."""
    cells = "\x00" + joined
    if _COLUMN_MAY_HOLD_FORMULA.search(cells) is None:
        return False
    # A NUL inside a text would blur where cells start: then the per-value path decides.
    return _COLUMN_FORMULA.search(cells) is not None or joined.count("\x00") != len(values) - 1


def _csv_texts(values: Sequence[str]) -> Iterable[str]:
    # Whole-column scans (C speed) decide; a false hit only costs the per-value path.
    joined = "\x00".join(values)
    if _holds_formulas(values, joined):
        return map(csv_text, values)
    if '"' in joined:
        return map(_quote, map(operator.methodcaller("replace", '"', '""'), values))
    if "," in joined or "\n" in joined or "\r" in joined:
        return map(_quote, values)
    return values


def _csv_cell(value: Any) -> str:
    """One CSV cell of any type: numbers untouched, dates ISO 8601, bytes base64."""
    if isinstance(value, bool):
        return _BOOL_TEXT[value]
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict | list | tuple):
        return csv_text(json_text(value))
    return csv_text(str(value))


_CSV_COLUMNS: dict[type, ColumnEncoder] = {
    str: _csv_texts,
    int: lambda values: map(int.__repr__, values),
    float: lambda values: map(float.__repr__, values),
    bool: lambda values: map(_BOOL_TEXT.__getitem__, values),
    datetime: lambda values: map(datetime.isoformat, values),
    date: lambda values: map(date.isoformat, values),
    time: lambda values: map(time.isoformat, values),
    Decimal: lambda values: map(Decimal.__str__, values),
    uuid.UUID: lambda values: map(uuid.UUID.__str__, values),
}


def csv_column(values: Sequence[Any]) -> Sequence[str]:
    """A column's values as ready CSV cells (neutralised, quoted; empty for None)."""
    return _encode_column(values, _CSV_COLUMNS, _csv_cell, "")


def csv_lines(rows: Iterable[Sequence[str]]) -> bytes:
    """Rows of ready cells as RFC 4180 lines (CRLF-terminated)."""
    lines = list(map(",".join, rows))
    return utf8("\r\n".join(lines) + "\r\n") if lines else b""
