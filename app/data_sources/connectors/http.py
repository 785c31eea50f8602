"""The ``http`` connector: a system that implements the service's REST contract.

The contract (``docs/data-sources.md``): ``GET /health``; ``POST /access`` (paged by cursor),
``/erase``, ``/rectify``, ``/restrict`` and, optionally, ``/count`` and ``/plan`` (a dry run);
JSON bodies carrying the request id and the subject's identities; a bearer token when
configured.

Every connection is opened by ``ssrf.GuardedTransport``: the host is resolved, refused if
it is, or resolves to, a cloud metadata, unspecified, multicast or reserved address (private
addresses are allowed: internal systems live there), and the connection goes to the address
checked. Redirects are not followed. Errors name the source, the
endpoint and the status, never a body (it may hold personal data).
"""

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.core import ssrf
from app.core.config import Settings
from app.data_sources.connectors.base import (
    AccessPlan,
    ColumnInfo,
    ErasureOutcome,
    ErasurePlan,
    ErasureRecorder,
    FieldChange,
    NotPreviewable,
    PlannedChange,
    RecordBatch,
    RectificationOutcome,
    RectificationPlan,
    RestrictionOutcome,
    RestrictionPlan,
    RetainedCategory,
    RetainedKeys,
    SourceError,
    SubjectIdentity,
    TableErasurePlan,
)

__all__ = ["MAX_RESPONSE_BYTES", "HttpConnector"]

# One page or answer; a bigger one is refused rather than held in memory.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# "Not offered here": 501 for /rectify and /restrict; the optional /count may also be absent.
NOT_IMPLEMENTED = frozenset({501})
OPTIONAL_ABSENT = frozenset({404, 405, 501})


class HttpConnector:
    """An ``http`` data source; create one per fulfilment run and ``close()`` it after."""

    def __init__(
        self,
        name: str,
        base_url: str,
        settings: Settings,
        *,
        auth_token: str | None = None,
        request_id: uuid.UUID | None = None,
    ) -> None:
        self.name = name
        self.request_id = request_id
        try:
            parts = urlsplit(base_url.strip())
            parts.port  # noqa: B018 (raises ValueError for a port out of range)
        except ValueError:
            raise self._error("the base URL is not a valid URL", retryable=False) from None
        scheme = parts.scheme.lower()
        if scheme not in {"http", "https"} or not parts.hostname:
            raise self._error("the base URL must be an http(s) URL with a host", retryable=False)
        if "@" in parts.netloc:
            raise self._error(
                "the base URL must not hold credentials; use the bearer token", retryable=False
            )
        self._base_url = base_url.strip().rstrip("/")
        self._batch_size = settings.fulfilment_batch_size
        headers = {"Accept": "application/json", "User-Agent": "dsr-service"}
        if auth_token:
            headers["Authorization"] = f"Bearer {auth_token}"
        self._client = httpx.AsyncClient(
            timeout=settings.source_timeout,
            follow_redirects=False,
            trust_env=False,
            headers=headers,
            # Internal systems live on private networks; metadata and the like never do.
            transport=ssrf.GuardedTransport(allow_private=True),
        )

    def _error(self, message: str, *, retryable: bool) -> SourceError:
        return SourceError(f"source {self.name}: {message}", retryable=retryable)

    async def close(self) -> None:
        await self._client.aclose()

    # -- transport -------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        unsupported: frozenset[int] = frozenset(),
    ) -> tuple[int, Any]:
        """(status, JSON) for 2xx, (status, None) for an ``unsupported`` status; else raise."""
        endpoint = f"{method} {path}"
        try:
            async with self._client.stream(method, self._base_url + path, json=payload) as response:
                status = response.status_code
                if status in unsupported:
                    return status, None
                # 501 says "not implemented": retrying cannot help.
                if (status >= 500 and status != 501) or status == 429:
                    raise self._error(f"{endpoint} answered {status}", retryable=True)
                if not 200 <= status < 300:
                    # 3xx: redirects are not followed (they could lead anywhere).
                    raise self._error(f"{endpoint} answered {status}", retryable=False)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise self._error(
                            f"{endpoint} answered more than {MAX_RESPONSE_BYTES} bytes",
                            retryable=False,
                        )
        except httpx.TimeoutException:
            raise self._error(f"{endpoint} timed out", retryable=True) from None
        except httpx.TransportError as exc:
            if ssrf.refused_by_policy(exc):
                raise self._error(
                    "the base URL points to a cloud metadata, unspecified, multicast or "
                    "reserved address",
                    retryable=False,
                ) from None
            if isinstance(exc.__cause__, ssrf.UnresolvableHost):
                raise self._error("the host name does not resolve", retryable=True) from None
            raise self._error(f"{endpoint} failed ({type(exc).__name__})", retryable=True) from None
        if path == "/health":
            return status, None
        try:
            return status, json.loads(body)
        except ValueError:
            raise self._error(f"{endpoint} answered malformed JSON", retryable=False) from None

    def _shape_error(self, endpoint: str, what: str) -> SourceError:
        return self._error(f"{endpoint} answered an unexpected shape ({what})", retryable=False)

    def _payload(self, identity: SubjectIdentity, **extra: Any) -> dict[str, Any]:
        return {
            "request_id": str(self.request_id) if self.request_id else None,
            "identity": {
                "email": identity.email,
                "phone": identity.phone,
                "customer_id": identity.customer_id,
                "name": identity.name,
            },
            **extra,
        }

    async def _post_object(
        self,
        path: str,
        payload: dict[str, Any],
        *,
        unsupported: frozenset[int] = frozenset(),
    ) -> tuple[int, dict[str, Any]]:
        status, body = await self._call("POST", path, payload, unsupported=unsupported)
        if body is None:
            return status, {}
        if not isinstance(body, dict):
            raise self._shape_error(f"POST {path}", "not an object")
        return status, body

    # -- the Connector protocol ------------------------------------------------------------

    async def test(self) -> None:
        """``GET /health`` must answer 2xx."""
        await self._call("GET", "/health")

    def collect(
        self,
        identity: SubjectIdentity,
        *,
        provided_only: bool = False,
        retained: RetainedKeys | None = None,
    ) -> AsyncIterator[RecordBatch]:
        """Page through ``POST /access``; each page's tables become bounded batches.

        ``retained`` is not used: the source answers ``/access`` with the records it kept
        at an erasure itself (docs/data-sources.md).
        """
        return self._collect(identity, provided_only)

    async def _collect(
        self, identity: SubjectIdentity, provided_only: bool
    ) -> AsyncIterator[RecordBatch]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            payload = self._payload(
                identity, provided_only=provided_only, cursor=cursor, limit=self._batch_size
            )
            _status, page = await self._post_object("/access", payload)
            tables = page.get("tables")
            if not isinstance(tables, list):
                raise self._shape_error("POST /access", "tables is not a list")
            for entry in tables:
                for batch in self._batches(entry, provided_only):
                    yield batch
            next_cursor = page.get("next_cursor")
            if next_cursor is None:
                return
            if not isinstance(next_cursor, str) or next_cursor in seen:
                raise self._shape_error("POST /access", "next_cursor does not advance")
            seen.add(next_cursor)
            cursor = next_cursor

    def _batches(self, entry: Any, provided_only: bool) -> list[RecordBatch]:
        endpoint = "POST /access"
        if not isinstance(entry, dict) or not isinstance(entry.get("table"), str):
            raise self._shape_error(endpoint, "a table without a name")
        raw_columns, rows = entry.get("columns"), entry.get("rows")
        if not isinstance(raw_columns, list) or not isinstance(rows, list):
            raise self._shape_error(endpoint, "columns or rows is not a list")
        columns = []
        for column in raw_columns:
            if not (
                isinstance(column, dict)
                and isinstance(column.get("name"), str)
                and isinstance(column.get("category"), str)
                and isinstance(column.get("provided_by_subject"), bool)
            ):
                raise self._shape_error(endpoint, "a column without name/category/provided")
            columns.append(
                ColumnInfo(column["name"], column["category"], column["provided_by_subject"])
            )
        names = [column.name for column in columns]
        if entry.get("primary_key") not in names:
            raise self._shape_error(endpoint, "primary_key is not a column")
        width = len(columns)
        if not all(isinstance(row, list) and len(row) == width for row in rows):
            raise self._shape_error(endpoint, "a row does not match the columns")
        key_index = names.index(entry["primary_key"])
        keep = [
            index
            for index, column in enumerate(columns)
            if not provided_only or column.provided_by_subject or index == key_index
        ]
        if provided_only and all(not columns[index].provided_by_subject for index in keep):
            return []
        if len(keep) < width:
            # The source sent more than was asked: portability packs keep provided data only.
            rows = [[row[index] for index in keep] for row in rows]
            columns = [columns[index] for index in keep]
            key_index = keep.index(key_index)
        return [
            RecordBatch(
                source=self.name,
                table=entry["table"],
                columns=tuple(columns),
                record_id_index=key_index,
                rows=[tuple(row) for row in rows[start : start + self._batch_size]],
            )
            for start in range(0, len(rows), self._batch_size)
        ]

    async def count(self, identity: SubjectIdentity) -> int:
        """``POST /count`` → ``{"records": n}`` where offered; 0 (unknown) otherwise."""
        status, body = await self._post_object(
            "/count", self._payload(identity), unsupported=OPTIONAL_ABSENT
        )
        if status in OPTIONAL_ABSENT:
            return 0
        records = body.get("records")
        if not isinstance(records, int) or isinstance(records, bool) or records < 0:
            raise self._shape_error("POST /count", "records is not a count")
        return records

    async def erase(
        self, identity: SubjectIdentity, *, recorder: ErasureRecorder | None = None
    ) -> ErasureOutcome:
        """``POST /erase``; the source keeps what it retains findable itself (no recorder)."""
        _status, body = await self._post_object("/erase", self._payload(identity))
        endpoint = "POST /erase"
        outcome = ErasureOutcome(
            source=self.name,
            deleted_rows=self._counts(endpoint, body.get("deleted_rows")),
            anonymised_rows=self._counts(endpoint, body.get("anonymised_rows")),
        )
        retained = body.get("retained") or []
        if not isinstance(retained, list):
            raise self._shape_error(endpoint, "retained is not a list")
        for item in retained:
            if not (
                isinstance(item, dict)
                and isinstance(item.get("category"), str)
                and isinstance(item.get("reason"), str)
                and isinstance(item.get("tables", []), list)
            ):
                raise self._shape_error(endpoint, "a retained entry without category/reason")
            tables = tuple(str(table) for table in item.get("tables", []))
            outcome.retained.append(RetainedCategory(item["category"], item["reason"], tables))
        return outcome

    def _counts(self, endpoint: str, value: Any) -> dict[str, int]:
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(count, int) and not isinstance(count, bool) for count in value.values()
        ):
            raise self._shape_error(endpoint, "row counts are not {table: n}")
        return {str(table): count for table, count in value.items()}

    async def rectify(
        self, identity: SubjectIdentity, changes: list[dict[str, Any]]
    ) -> RectificationOutcome:
        """``POST /rectify``; a 501 answer means the source holds none of the fields."""
        requested = [
            {
                "field": change.get("field"),
                "current": change.get("current"),
                "requested": change.get("requested"),
            }
            for change in changes
        ]
        status, body = await self._post_object(
            "/rectify", self._payload(identity, changes=requested), unsupported=NOT_IMPLEMENTED
        )
        outcome = RectificationOutcome(source=self.name)
        if status in NOT_IMPLEMENTED:
            outcome.not_held = [str(change.get("field")) for change in changes]
            return outcome
        endpoint = "POST /rectify"
        applied, not_held = body.get("applied") or [], body.get("not_held") or []
        if not isinstance(applied, list) or not isinstance(not_held, list):
            raise self._shape_error(endpoint, "applied or not_held is not a list")
        for item in applied:
            if not (
                isinstance(item, dict)
                and isinstance(item.get("field"), str)
                and isinstance(item.get("table"), str)
                and isinstance(item.get("rows"), int)
            ):
                raise self._shape_error(endpoint, "an applied entry without field/table/rows")
            outcome.applied.append(
                FieldChange(
                    field=item["field"],
                    table=item["table"],
                    rows=item["rows"],
                    before=item.get("before"),
                    after=item.get("after"),
                )
            )
        outcome.not_held = [str(field) for field in not_held]
        return outcome

    async def restrict(self, identity: SubjectIdentity, *, restricted: bool) -> RestrictionOutcome:
        """``POST /restrict``; a 501 answer means the source cannot record a restriction."""
        status, body = await self._post_object(
            "/restrict", self._payload(identity, restricted=restricted), unsupported=NOT_IMPLEMENTED
        )
        if status in NOT_IMPLEMENTED:
            return RestrictionOutcome(source=self.name, supported=False)
        flagged = body.get("flagged_rows")
        if not isinstance(flagged, int) or isinstance(flagged, bool) or flagged < 0:
            raise self._shape_error("POST /restrict", "flagged_rows is not a count")
        return RestrictionOutcome(source=self.name, flagged_rows=flagged)

    # -- dry runs: the optional ``POST /plan`` (nothing may change in the source) ------------

    async def _plan(self, identity: SubjectIdentity, request_type: str, **extra: Any) -> Any:
        payload = self._payload(identity, request_type=request_type, **extra)
        status, body = await self._post_object("/plan", payload, unsupported=OPTIONAL_ABSENT)
        if status in OPTIONAL_ABSENT:
            raise NotPreviewable(
                f"source {self.name}: offers no dry run (POST /plan answered {status})"
            )
        return body

    def _count(self, endpoint: str, value: Any, what: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self._shape_error(endpoint, f"{what} is not a count")
        return value

    async def plan_erasure(self, identity: SubjectIdentity) -> ErasurePlan:
        """``POST /plan`` with ``request_type`` erasure: answered as ``/erase`` would be."""
        body = await self._plan(identity, "erasure")
        endpoint = "POST /plan"
        deleted = self._counts(endpoint, body.get("deleted_rows"))
        anonymised = self._counts(endpoint, body.get("anonymised_rows"))
        plan = ErasurePlan(source=self.name)
        retained = body.get("retained") or []
        if not isinstance(retained, list):
            raise self._shape_error(endpoint, "retained is not a list")
        kept_tables: set[str] = set()
        for item in retained:
            if not (
                isinstance(item, dict)
                and isinstance(item.get("category"), str)
                and isinstance(item.get("reason"), str)
                and isinstance(item.get("tables", []), list)
            ):
                raise self._shape_error(endpoint, "a retained entry without category/reason")
            tables = tuple(str(table) for table in item.get("tables", []))
            kept_tables.update(tables)
            plan.retained.append(RetainedCategory(item["category"], item["reason"], tables))
        for table, rows in deleted.items():
            if rows:
                plan.tables.append(TableErasurePlan(table=table, rows=rows, deleted=rows))
        for table, rows in anonymised.items():
            if rows:
                kept = rows if table in kept_tables else 0
                plan.tables.append(
                    TableErasurePlan(table=table, rows=rows, anonymised=rows, retained=kept)
                )
        return plan

    async def plan_rectification(
        self, identity: SubjectIdentity, changes: list[dict[str, Any]]
    ) -> RectificationPlan:
        """``POST /plan`` with ``request_type`` rectification and the ``changes``."""
        requested = [
            {"field": change.get("field"), "requested": change.get("requested")}
            for change in changes
        ]
        body = await self._plan(identity, "rectification", changes=requested)
        endpoint = "POST /plan"
        found, not_held = body.get("changes") or [], body.get("not_held") or []
        if not isinstance(found, list) or not isinstance(not_held, list):
            raise self._shape_error(endpoint, "changes or not_held is not a list")
        plan = RectificationPlan(source=self.name, not_held=[str(item) for item in not_held])
        for item in found:
            if not (
                isinstance(item, dict)
                and isinstance(item.get("field"), str)
                and isinstance(item.get("table"), str)
            ):
                raise self._shape_error(endpoint, "a change without field/table")
            rows = self._count(endpoint, item.get("rows"), "rows")
            plan.changes.append(
                PlannedChange(item["field"], item["table"], rows, item.get("current"))
            )
        return plan

    async def plan_restriction(self, identity: SubjectIdentity) -> RestrictionPlan:
        """``POST /plan`` with ``request_type`` restriction: ``{"flagged_rows": n}``, or
        ``{"supported": false}`` where the source cannot record a restriction."""
        body = await self._plan(identity, "restriction")
        if body.get("supported") is False:
            return RestrictionPlan(source=self.name, supported=False)
        rows = self._count("POST /plan", body.get("flagged_rows"), "flagged_rows")
        return RestrictionPlan(source=self.name, rows=rows)

    async def plan_access(self, identity: SubjectIdentity, *, provided_only: bool) -> AccessPlan:
        """``POST /plan`` with ``request_type`` access: ``{"tables": {table: n},
        "categories": {category: n}}``; without ``/plan``, counted from ``/access`` pages
        (which only read)."""
        try:
            body = await self._plan(
                identity, "portability" if provided_only else "access", provided_only=provided_only
            )
        except NotPreviewable:
            return await self._counted_access(identity, provided_only)
        endpoint = "POST /plan"
        return AccessPlan(
            source=self.name,
            tables=self._counts(endpoint, body.get("tables")),
            categories=self._counts(endpoint, body.get("categories")),
        )

    async def _counted_access(self, identity: SubjectIdentity, provided_only: bool) -> AccessPlan:
        plan = AccessPlan(source=self.name)
        async for batch in self._collect(identity, provided_only):
            rows = len(batch.rows)
            plan.tables[batch.table] = plan.tables.get(batch.table, 0) + rows
            for category in dict.fromkeys(column.category for column in batch.columns):
                plan.categories[category] = plan.categories.get(category, 0) + rows
        return plan
