"""Tracebacks safe to log: where a failure happened, never what its message said.

An exception's message can quote the data it failed on (a ``KeyError`` on an email address,
a driver error echoing a row), and logs must never carry a subject's personal data. The
frames (file, line, function, source line) come from the service's code, so they are kept.
"""

import traceback

WITHHELD = "(message withheld: it may hold personal data)"


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and the ones that led to it, oldest first (as Python prints them)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return chain[::-1]


def traceback_without_messages(exc: BaseException) -> str:
    """``exc``'s traceback, with its causes, naming each exception's type but not its message."""
    parts: list[str] = []
    for index, item in enumerate(_chain(exc)):
        if index:
            parts.append("\nThe above exception led to the following one:\n\n")
        parts.append("Traceback (most recent call last):\n")
        frames = traceback.StackSummary.extract(traceback.walk_tb(item.__traceback__))
        parts.extend(frames.format())
        kind = type(item)
        parts.append(f"{kind.__module__}.{kind.__qualname__} {WITHHELD}\n")
    return "".join(parts)
