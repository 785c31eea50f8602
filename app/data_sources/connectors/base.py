"""What every data source connector offers fulfilment, and the shapes it answers in.

Connectors never log or raise with the subject's data: a ``SourceError`` message names the
source and the failure kind only.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class SourceError(Exception):
    """A source could not be reached or refused the work; the message holds no personal data.

    ``retryable`` is False when retrying cannot help (bad map, bad credentials, 4xx).
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class SubjectIdentity:
    """Who to look for: the request's normalised identities (any may be missing)."""

    email: str | None = None
    phone: str | None = None
    customer_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    category: str
    provided_by_subject: bool
    # A link to another table's row (a relation's ``from`` column): a reference, not a fact
    # about the person. The CSV pack lists no record in a category for its links alone.
    link: bool = False


@dataclass
class RecordBatch:
    """Some rows of one table of one source, values in ``columns`` order.

    A connector yields a table's rows as consecutive batches; ``record_id_index`` points at
    the primary key column within ``columns``.
    """

    source: str
    table: str
    columns: tuple[ColumnInfo, ...]
    record_id_index: int
    rows: list[tuple[Any, ...]]


# Receives a row stream's output chunk by chunk (bytes or a bytearray).
LineSink = Callable[[bytes], None]
# Streams some of a table's rows into a sink; answers how many rows it wrote.
RowStream = Callable[[LineSink], Awaitable[int]]


class EncodedTable(Protocol):
    """A table of the subject's records that its source writes in the export formats itself.

    Yielded by ``ExportingConnector.collect_for_export`` in place of a table's RecordBatches
    (PostgreSQL's COPY: the database formats the values). Usable only until the next item
    is asked of the stream that yielded it. Each method answers one or more row streams
    that may run concurrently; together they write every row of the table once, in no
    particular order. Values as docs/exports.md says ("Big PostgreSQL tables").
    """

    source: str
    table: str
    columns: tuple[ColumnInfo, ...]
    record_id_index: int

    def json_streams(self) -> list[RowStream]:
        """Rows as JSON objects (``{"column":value,...}`` in ``columns`` order), one a line.

        Each chunk holds whole ``\\n``-terminated lines, so the streams may share one file.
        """
        ...

    def csv_streams(self, cells: Sequence[int | None], lead: tuple[str, str]) -> list[RowStream]:
        """Rows as RFC 4180 lines with LF ends: ``lead``, the record id, then ``cells``.

        ``cells`` are indexes into ``columns`` (None: an empty cell). Text cells are
        neutralised like ``export_encoding.csv_text``; ``lead`` (source and table names,
        already neutralised) is quoted as needed. A chunk may end inside a row: each stream
        needs a file of its own.
        """
        ...


@runtime_checkable
class ExportingConnector(Protocol):
    """A connector that can hand big tables over pre-encoded (``SqlConnector`` on PostgreSQL)."""

    def collect_for_export(
        self,
        identity: SubjectIdentity,
        *,
        provided_only: bool = False,
        retained: "RetainedKeys | None" = None,
    ) -> AsyncIterator[RecordBatch | EncodedTable]:
        """What ``collect`` streams, except that some tables may come as an EncodedTable."""
        ...


class ErasureRecorder(Protocol):
    """Where an erasure leaves what the service must keep knowing (its index of kept rows).

    A connector calls it inside its erasure transaction, before committing: once the rows
    that tie a person's email or phone to the rows kept for a legal obligation are gone,
    only this record can find the kept rows again. Each call may raise ``SourceError``
    (retryable), which rolls the erasure back.
    """

    async def found(self, identities: Sequence[tuple[str, Any]]) -> None:
        """Identity values (kind, value) the erased rows held, each kind one of ``email``,
        ``phone``, ``customer_id``; once, after the changes and before the commit."""
        ...

    async def retained(self, table: str, keys: Sequence[Any]) -> None:
        """Primary keys of rows of ``table`` the erasure keeps (a ``retain`` category), in
        batches, before the table changes."""
        ...


class RetainedKeys(Protocol):
    """Keys of rows that earlier erasures of this subject kept, per table of one source."""

    def keys(self, table: str) -> AsyncIterator[list[str]]:
        """The keys (as text) in pages, each key once."""
        ...


@dataclass(frozen=True)
class RetainedCategory:
    """A category kept despite erasure, with its legal reason (shown to the subject)."""

    category: str
    reason: str
    tables: tuple[str, ...] = ()


@dataclass
class ErasureOutcome:
    source: str
    deleted_rows: dict[str, int] = field(default_factory=dict)
    anonymised_rows: dict[str, int] = field(default_factory=dict)
    retained: list[RetainedCategory] = field(default_factory=list)


@dataclass(frozen=True)
class FieldChange:
    """One rectified field; ``before``/``after`` go to the audit trail only."""

    field: str
    table: str
    rows: int
    before: Any
    after: Any


@dataclass
class RectificationOutcome:
    source: str
    applied: list[FieldChange] = field(default_factory=list)
    # Requested fields this source does not hold (another source may).
    not_held: list[str] = field(default_factory=list)


@dataclass
class RestrictionOutcome:
    source: str
    flagged_rows: int = 0
    supported: bool = True


# ---------------------------------------------------------------- dry runs (the plan)


@dataclass
class TableErasurePlan:
    """What an erasure would do to one table's rows of the subject (row counts only).

    ``deleted``: rows removed; a kept row is ``anonymised`` when some of its columns would
    be nulled or masked, and ``retained`` when it keeps a ``retain`` category's columns.
    ``nulled`` and ``masked`` count the kept rows with such columns (a row may be both).
    """

    table: str
    rows: int
    deleted: int = 0
    anonymised: int = 0
    nulled: int = 0
    masked: int = 0
    retained: int = 0
    nulled_columns: tuple[str, ...] = ()
    masked_columns: tuple[str, ...] = ()
    retained_columns: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass
class ErasurePlan:
    source: str
    tables: list[TableErasurePlan] = field(default_factory=list)
    retained: list[RetainedCategory] = field(default_factory=list)


@dataclass(frozen=True)
class PlannedChange:
    """One field a rectification would change: ``current`` is the subject's data (officers
    only; never logged or audited)."""

    field: str
    table: str
    rows: int
    current: Any


@dataclass
class RectificationPlan:
    source: str
    changes: list[PlannedChange] = field(default_factory=list)
    not_held: list[str] = field(default_factory=list)


@dataclass
class RestrictionPlan:
    """The rows a restriction would flag; ``supported`` is False where the source cannot."""

    source: str
    rows: int = 0
    table: str | None = None
    supported: bool = True


@dataclass
class AccessPlan:
    """How many of the subject's records each table and each data category holds."""

    source: str
    tables: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)


class NotPreviewable(SourceError):
    """The source offers no dry run (an ``http`` source without ``POST /plan``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class Connector(Protocol):
    """A ``sql`` or ``http`` source as fulfilment uses it (``task`` sources have no connector)."""

    name: str

    async def test(self) -> None:
        """Check the source is reachable and matches its configuration; raise SourceError."""

    def collect(
        self,
        identity: SubjectIdentity,
        *,
        provided_only: bool = False,
        retained: RetainedKeys | None = None,
    ) -> AsyncIterator[RecordBatch]:
        """Stream the subject's records, table by table, in bounded batches.

        ``retained``: rows earlier erasures kept, which the identities may no longer reach
        (``sql`` sources read them by key; an ``http`` source keeps them findable itself).
        """
        ...

    async def count(self, identity: SubjectIdentity) -> int:
        """How many records the subject has (for progress); may be an estimate."""
        ...

    async def erase(
        self, identity: SubjectIdentity, *, recorder: ErasureRecorder | None = None
    ) -> ErasureOutcome:
        """Erase per category; ``recorder`` learns the identities and kept rows first."""
        ...

    async def rectify(
        self, identity: SubjectIdentity, changes: list[dict[str, Any]]
    ) -> RectificationOutcome:
        """Apply ``[{"field", "current", "requested"}]`` where this source holds ``field``."""
        ...

    async def restrict(self, identity: SubjectIdentity, *, restricted: bool) -> RestrictionOutcome:
        """Flag (or unflag) the subject as restricted, where the source can record it."""
        ...

    # Dry runs: read only, nothing changes in the source (GET /v1/requests/{id}/plan).

    async def plan_erasure(self, identity: SubjectIdentity) -> ErasurePlan:
        """What ``erase`` would delete, null, mask and keep, table by table."""
        ...

    async def plan_rectification(
        self, identity: SubjectIdentity, changes: list[dict[str, Any]]
    ) -> RectificationPlan:
        """Per requested field this source holds: its table, rows and current value."""
        ...

    async def plan_restriction(self, identity: SubjectIdentity) -> RestrictionPlan:
        """How many rows ``restrict`` would flag."""
        ...

    async def plan_access(self, identity: SubjectIdentity, *, provided_only: bool) -> AccessPlan:
        """Record counts per table and per data category (what an export would hold)."""
        ...

    async def close(self) -> None: ...
