"""A real ``http`` data source on loopback, implementing the contract in docs/data-sources.md.

Use it wherever a test needs a system the service reaches over HTTP (connector tests,
end-to-end fulfilment). It runs uvicorn on ``127.0.0.1`` (a free port) in a background
thread with its own event loop, so it works from sync and async tests alike and from any
event loop, including the worker's::

    with HttpSourceServer(token="source-token") as source:      # or: async with
        source.base_url      # "http://127.0.0.1:PORT/crm": the data source's base_url
        source.tables        # {"contacts": SourceTable, "orders": SourceTable} (Jane Doe + Bob)
        source.requests      # [Recorded(method, path, headers, json)], path without /crm
        source.fail("/access", status=503)               # next /access answers 503
        source.fail("/erase", delay=5.0)                 # next /erase answers after 5 s
        source.fail("/access", status=200, body=b"not json", times=2)  # broken body, twice
        source.page_size = 1                             # rows per /access page
        source.offers_plan = False                       # /plan answers 404 (no dry run)

Data: ``tables`` maps a table name to a ``SourceTable`` (its columns with category and
provided_by_subject, the identity columns the subject is matched on, whether erasure deletes
or retains the rows and which columns it nulls, and the rows as dicts). The default data
(``default_tables()``) mirrors the demo CRM: Jane Doe (``jane.doe@example.com``,
``+441632960001``, ``C-1001``) with a contact row and two retained orders, and Bob Smith.

Behaviour: a table's rows belong to the subject by its identity columns (emails compared
case-insensitively, phones and customer ids exactly) or through ``linked_by`` (orders follow
their contact). ``/access`` answers them page by page (``page_size`` rows, a cursor
``"<table index>:<offset>"``), only provided columns (plus the key) when ``provided_only``;
``/erase`` deletes or anonymises per table and lists retained categories, and keeps the
rows it retains findable by every identity of the erased person (a hash of each, as the
contract asks: ``kept``), so a later ``/access`` or ``/count`` by email or phone still
answers them; ``/rectify``
updates ``table.column`` or bare column fields; ``/restrict`` records the subject's rows in
``restricted`` (a set of ``(table, key)``); ``/count`` counts them; ``/plan`` (the dry run)
answers per ``request_type`` what ``/erase``, ``/rectify``, ``/restrict`` would do, or the
record counts of ``/access``, changing nothing. A configured ``token``
is required as ``Authorization: Bearer``; a missing or wrong one answers 401. Use
``requests_to(path)`` and ``rows_of(table, identity)`` to assert what happened.
"""

import asyncio
import copy
import hashlib
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

JANE = {
    "email": "jane.doe@example.com",
    "phone": "+441632960001",
    "customer_id": "C-1001",
    "name": "Jane Doe",
}
BASE_PATH = "/crm"


@dataclass
class SourceTable:
    primary_key: str
    # (name, category, provided_by_subject), in answer order.
    columns: list[tuple[str, str, bool]]
    # identity kind (email, phone, customer_id) -> column
    identity_columns: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    # (column, other table, other column): rows also belong to whoever owns that other row.
    linked_by: tuple[str, str, str] | None = None
    # "delete" removes the subject's rows; "retain" keeps them, nulling ``nulled_on_erasure``.
    erasure: str = "delete"
    retained_category: str | None = None
    retain_reason: str | None = None
    nulled_on_erasure: tuple[str, ...] = ()


@dataclass
class Fault:
    status: int = 500
    delay: float = 0.0
    body: bytes | None = None  # sent with ``status`` instead of the real answer


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    json: Any


def default_tables() -> dict[str, SourceTable]:
    contact_columns = [
        ("customer_id", "identity", False),
        ("name", "identity", True),
        ("email", "contact", True),
        ("phone", "contact", True),
        ("postcode", "contact", True),
        ("segment", "marketing", False),
    ]
    order_columns = [
        ("order_id", "financial", False),
        ("customer_id", "financial", False),
        ("amount", "financial", True),
        ("delivery_address", "contact", True),
    ]
    return {
        "contacts": SourceTable(
            primary_key="customer_id",
            columns=contact_columns,
            identity_columns={"email": "email", "phone": "phone", "customer_id": "customer_id"},
            rows=[
                {
                    "customer_id": "C-1001",
                    "name": "Jane Doe",
                    "email": "jane.doe@example.com",
                    "phone": "+441632960001",
                    "postcode": "QA1 4BZ",
                    "segment": "smb",
                },
                {
                    "customer_id": "C-1002",
                    "name": "Bob Smith",
                    "email": "bob.smith@example.org",
                    "phone": "+447700900123",
                    "postcode": "QB2 7DW",
                    "segment": "enterprise",
                },
            ],
        ),
        "orders": SourceTable(
            primary_key="order_id",
            columns=order_columns,
            identity_columns={"customer_id": "customer_id"},
            linked_by=("customer_id", "contacts", "customer_id"),
            rows=[
                {
                    "order_id": "O-1",
                    "customer_id": "C-1001",
                    "amount": "149.99",
                    "delivery_address": "14 Brookfield Lane",
                },
                {
                    "order_id": "O-2",
                    "customer_id": "C-1001",
                    "amount": "36.50",
                    "delivery_address": "2 Market Street",
                },
                {
                    "order_id": "O-3",
                    "customer_id": "C-1002",
                    "amount": "10.00",
                    "delivery_address": "9 High Street",
                },
            ],
            erasure="retain",
            retained_category="financial",
            retain_reason="financial records, 6 years, HMRC",
            nulled_on_erasure=("delivery_address",),
        ),
    }


class HttpSourceServer:
    """A loopback HTTP data source; ``with`` or ``async with`` it (see the module docstring)."""

    def __init__(
        self,
        tables: dict[str, SourceTable] | None = None,
        *,
        token: str | None = "source-token",
        page_size: int = 100,
    ) -> None:
        self.tables = tables if tables is not None else default_tables()
        self.token = token
        self.page_size = page_size
        self.offers_plan = True
        self.requests: list[Recorded] = []
        self.restricted: set[tuple[str, Any]] = set()
        # Hash of an identity of an erased person -> the (table, key) of rows kept for them.
        self.kept: dict[str, set[tuple[str, Any]]] = {}
        self.faults: dict[str, deque[Fault]] = {}
        self.base_url = ""
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- knobs ------------------------------------------------------------------------------

    def fail(
        self,
        path: str,
        *,
        status: int = 500,
        delay: float = 0.0,
        body: bytes | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls to ``path`` ("/access", ...) answer ``status`` after
        ``delay`` seconds (with ``body`` if given: use status 200 and a broken body to test
        malformed answers). A delay alone (status left at 500) still answers 500 after it."""
        with self._lock:
            queue = self.faults.setdefault(path, deque())
            queue.extend(Fault(status, delay, body) for _ in range(times))

    def requests_to(self, path: str) -> list[Recorded]:
        return [recorded for recorded in self.requests if recorded.path == path]

    def rows_of(self, table: str, identity: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """A copy of a table's rows (only the subject's when ``identity`` is given)."""
        with self._lock:
            if identity is None:
                return copy.deepcopy(self.tables[table].rows)
            return copy.deepcopy(self._subject_rows(table, identity))

    def _subject_rows(
        self, name: str, identity: dict[str, Any], *, with_kept: bool = False
    ) -> list[dict[str, Any]]:
        """The subject's rows of a table: by its identity columns, or through its link (and,
        ``with_kept``, the rows an earlier erasure of theirs kept)."""
        table = self.tables[name]
        linked: set[Any] = set()
        if table.linked_by is not None:
            _column, other, other_column = table.linked_by
            linked = {row.get(other_column) for row in self._subject_rows(other, identity)}
        kept = {
            key
            for identity_hash in (_identity_hashes(identity) if with_kept else set())
            for kept_table, key in self.kept.get(identity_hash, set())
            if kept_table == name
        }
        return [
            row
            for row in table.rows
            if _matches(table, row, identity)
            or (table.linked_by is not None and row.get(table.linked_by[0]) in linked)
            or row.get(table.primary_key) in kept
        ]

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> "HttpSourceServer":
        app = Starlette(
            routes=[
                Route(f"{BASE_PATH}/health", self._health, methods=["GET"]),
                Route(f"{BASE_PATH}/{{endpoint}}", self._endpoint, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        for _ in range(1000):
            if self._server.started:
                break
            threading.Event().wait(0.01)
        else:
            raise RuntimeError("the HTTP source server did not start")
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}{BASE_PATH}"
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def __enter__(self) -> "HttpSourceServer":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> "HttpSourceServer":
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *_exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # -- handlers ---------------------------------------------------------------------------

    async def _record(self, request: Request, path: str) -> tuple[Any, Response | None]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.requests.append(Recorded(request.method, path, dict(request.headers), body))
        if self.token is not None and request.headers.get("authorization") != (
            f"Bearer {self.token}"
        ):
            return body, JSONResponse({"detail": "unauthorised"}, status_code=401)
        with self._lock:
            queue = self.faults.get(path)
            fault = queue.popleft() if queue else None
        if fault is None:
            return body, None
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.body is not None:
            return body, Response(fault.body, status_code=fault.status, media_type="text/plain")
        return body, JSONResponse({"detail": "injected fault"}, status_code=fault.status)

    async def _health(self, request: Request) -> Response:
        _body, refused = await self._record(request, "/health")
        return refused or JSONResponse({"status": "ok"})

    async def _endpoint(self, request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        path = f"/{endpoint}"
        body, refused = await self._record(request, path)
        if refused is not None:
            return refused
        handlers = {
            "access": self._access,
            "erase": self._erase,
            "rectify": self._rectify,
            "restrict": self._restrict,
            "count": self._count,
            "plan": self._plan,
        }
        if endpoint == "plan" and not self.offers_plan:
            return JSONResponse({"detail": "not found"}, status_code=404)
        if endpoint not in handlers:
            return JSONResponse({"detail": "not found"}, status_code=404)
        if not isinstance(body, dict) or not isinstance(body.get("identity"), dict):
            return JSONResponse({"detail": "identity required"}, status_code=422)
        with self._lock:
            return JSONResponse(handlers[endpoint](body))

    # -- the contract, over the in-memory tables ----------------------------------------------

    def _access(self, body: dict[str, Any]) -> dict[str, Any]:
        identity, provided_only = body["identity"], bool(body.get("provided_only"))
        table_index, offset = 0, 0
        if body.get("cursor"):
            table_index, offset = (int(part) for part in str(body["cursor"]).split(":"))
        names = list(self.tables)
        tables: list[dict[str, Any]] = []
        room = self.page_size
        while table_index < len(names) and room > 0:
            name = names[table_index]
            table = self.tables[name]
            matching = self._subject_rows(name, identity, with_kept=True)
            columns = [
                column
                for column in table.columns
                if not provided_only or column[2] or column[0] == table.primary_key
            ]
            chunk = matching[offset : offset + room]
            if chunk and (not provided_only or any(column[2] for column in columns)):
                tables.append(
                    {
                        "table": name,
                        "primary_key": table.primary_key,
                        "columns": [
                            {"name": n, "category": c, "provided_by_subject": p}
                            for n, c, p in columns
                        ],
                        "rows": [[row.get(column[0]) for column in columns] for row in chunk],
                    }
                )
            room -= len(chunk)
            offset += len(chunk)
            if offset >= len(matching):
                table_index, offset = table_index + 1, 0
        more = table_index < len(names)
        return {"tables": tables, "next_cursor": f"{table_index}:{offset}" if more else None}

    def _count(self, body: dict[str, Any]) -> dict[str, Any]:
        identity = body["identity"]
        counts = [len(self._subject_rows(name, identity, with_kept=True)) for name in self.tables]
        return {"records": sum(counts)}

    def _erase(self, body: dict[str, Any]) -> dict[str, Any]:
        identity = body["identity"]
        deleted: dict[str, int] = {}
        anonymised: dict[str, int] = {}
        retained: dict[tuple[str, str], list[str]] = {}
        # Every identity of the person, from the request and from their rows, before erasing.
        hashes = _identity_hashes(identity)
        for name, table in self.tables.items():
            for row in self._subject_rows(name, identity):
                hashes |= _identity_hashes(
                    {kind: row.get(column) for kind, column in table.identity_columns.items()}
                )
        # Linked tables first: their link still needs the rows they point to.
        for name in sorted(self.tables, key=lambda name: self.tables[name].linked_by is None):
            table = self.tables[name]
            matching = self._subject_rows(name, identity)
            if not matching:
                continue
            if table.erasure == "delete":
                table.rows = [row for row in table.rows if all(row is not m for m in matching)]
                deleted[name] = len(matching)
                continue
            for row in matching:
                for column in table.nulled_on_erasure:
                    row[column] = None
                for identity_hash in hashes:
                    self.kept.setdefault(identity_hash, set()).add((name, row[table.primary_key]))
            anonymised[name] = len(matching)
            key = (table.retained_category or "retained", table.retain_reason or "")
            retained.setdefault(key, []).append(name)
        return {
            "deleted_rows": deleted,
            "anonymised_rows": anonymised,
            "retained": [
                {"category": category, "reason": reason, "tables": names}
                for (category, reason), names in retained.items()
            ],
        }

    def _rectify(self, body: dict[str, Any]) -> dict[str, Any]:
        identity = body["identity"]
        applied, not_held = [], []
        for change in body.get("changes") or []:
            field_name = str(change.get("field"))
            table_name, dot, column = field_name.partition(".")
            if not dot:
                table_name, column = "", field_name
            holders = [
                name
                for name, table in self.tables.items()
                if (not table_name or name == table_name)
                and any(c[0] == column for c in table.columns)
            ]
            rows_changed = 0
            for name in holders[:1]:
                matching = self._subject_rows(name, identity)
                before = sorted({str(row.get(column)) for row in matching})
                for row in matching:
                    row[column] = change.get("requested")
                rows_changed = len(matching)
                if rows_changed:
                    applied.append(
                        {
                            "field": field_name,
                            "table": name,
                            "rows": rows_changed,
                            "before": before[0] if len(before) == 1 else before,
                            "after": change.get("requested"),
                        }
                    )
            if not rows_changed:
                not_held.append(field_name)
        return {"applied": applied, "not_held": not_held}

    def _restrict(self, body: dict[str, Any]) -> dict[str, Any]:
        identity, restricted = body["identity"], bool(body.get("restricted"))
        flagged = 0
        for name, table in self.tables.items():
            for row in self._subject_rows(name, identity):
                key = (name, row[table.primary_key])
                if restricted:
                    self.restricted.add(key)
                else:
                    self.restricted.discard(key)
                flagged += 1
        return {"flagged_rows": flagged}

    def _plan(self, body: dict[str, Any]) -> dict[str, Any]:
        """The dry run: what the request type's endpoint would do, nothing changed."""
        identity, kind = body["identity"], body.get("request_type")
        if kind == "erasure":
            deleted: dict[str, int] = {}
            anonymised: dict[str, int] = {}
            retained: dict[tuple[str, str], list[str]] = {}
            for name, table in self.tables.items():
                rows = len(self._subject_rows(name, identity))
                if not rows:
                    continue
                if table.erasure == "delete":
                    deleted[name] = rows
                    continue
                anonymised[name] = rows
                key = (table.retained_category or "retained", table.retain_reason or "")
                retained.setdefault(key, []).append(name)
            return {
                "deleted_rows": deleted,
                "anonymised_rows": anonymised,
                "retained": [
                    {"category": category, "reason": reason, "tables": names}
                    for (category, reason), names in retained.items()
                ],
            }
        if kind == "rectification":
            changes, not_held = [], []
            for change in body.get("changes") or []:
                field_name = str(change.get("field"))
                table_name, dot, column = field_name.partition(".")
                if not dot:
                    table_name, column = "", field_name
                holders = [
                    name
                    for name, table in self.tables.items()
                    if (not table_name or name == table_name)
                    and any(c[0] == column for c in table.columns)
                ]
                matching = self._subject_rows(holders[0], identity) if holders else []
                if not matching:
                    not_held.append(field_name)
                    continue
                current = sorted({str(row.get(column)) for row in matching})
                changes.append(
                    {
                        "field": field_name,
                        "table": holders[0],
                        "rows": len(matching),
                        "current": current[0] if len(current) == 1 else current,
                    }
                )
            return {"changes": changes, "not_held": not_held}
        if kind in ("restriction", "objection"):
            flagged = sum(len(self._subject_rows(name, identity)) for name in self.tables)
            return {"flagged_rows": flagged}
        provided_only = bool(body.get("provided_only"))
        tables: dict[str, int] = {}
        categories: dict[str, int] = {}
        for name, table in self.tables.items():
            columns = [c for c in table.columns if not provided_only or c[2]]
            rows = len(self._subject_rows(name, identity, with_kept=True))
            if not rows or not columns:
                continue
            tables[name] = rows
            for category in dict.fromkeys(c[1] for c in columns):
                categories[category] = categories.get(category, 0) + rows
        return {"tables": tables, "categories": categories}


def _identity_hashes(identity: dict[str, Any]) -> set[str]:
    """How the source keeps an erased person's identities: hashed, never in plaintext (a
    name alone identifies nobody)."""
    hashes = set()
    for kind in ("email", "phone", "customer_id"):
        value = identity.get(kind)
        if value is not None:
            text = str(value).strip().lower() if kind == "email" else str(value)
            hashes.add(hashlib.sha256(f"{kind}:{text}".encode()).hexdigest())
    return hashes


def _matches(table: SourceTable, row: dict[str, Any], identity: dict[str, Any]) -> bool:
    for kind, column in table.identity_columns.items():
        wanted, held = identity.get(kind), row.get(column)
        if wanted is None or held is None:
            continue
        if kind == "email" and str(wanted).lower() == str(held).lower():
            return True
        if kind != "email" and wanted == held:
            return True
    return False
