"""Request and response models of the data sources API, with examples for ``/docs``.

Credentials (the SQL URL with its password, the HTTP bearer token) appear only in create
bodies; every response shows a safe view.
"""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.schemas import StrictModel

SourceKind = Literal["sql", "http", "task"]

SourceName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[a-z0-9_\-]+$",
        description="Unique among your data sources: lower-case letters, digits, `_` and `-`. "
        "Shown in access packs and erasure results.",
        examples=["crm"],
    ),
]
Description = Annotated[
    str | None,
    Field(max_length=500, examples=["Sales CRM (PostgreSQL)"]),
]


class SqlSourceCreate(StrictModel):
    """A database the service reads and changes directly, described by a dataset map."""

    name: SourceName
    kind: Literal["sql"]
    description: Description = None
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="SQLAlchemy database URL, credentials included "
        "(`postgresql+asyncpg://user:password@host:5432/db`, `sqlite:////data/crm.db`). "
        "Stored encrypted and never shown again: responses show it without the password.",
        examples=["postgresql+asyncpg://dsr_reader:s3cret@db.internal:5432/crm"],
    )
    dataset_map: dict[str, Any] | str = Field(
        description="The dataset map, as a JSON object or as YAML/JSON text: the subject "
        "table, the tables with their identity columns and relations, each column's data "
        "category and whether the subject provided it, and each category's erasure strategy "
        "(`delete`, `null`, `mask`, or `retain` with its legal reason).",
    )


class HttpSourceCreate(StrictModel):
    """A system that implements the service's REST contract for data sources."""

    name: SourceName
    kind: Literal["http"]
    description: Description = None
    base_url: str = Field(
        min_length=1,
        max_length=2000,
        description="Where the source's REST contract is served (http or https, no "
        "credentials in the URL).",
        examples=["https://billing.internal.example.com/dsr"],
    )
    auth_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=4000,
        description="Bearer token sent to the source. Stored encrypted, never shown again.",
    )


class TaskSourceCreate(StrictModel):
    """A system the service cannot reach: a person or program does the work and reports back."""

    name: SourceName
    kind: Literal["task"]
    description: Description = None
    assignee_client_id: str = Field(
        min_length=1,
        max_length=64,
        description="The API client that receives `task.created` webhook events for this "
        "source and posts results back. It must exist and be active.",
        examples=["integ_5hM2kQ"],
    )
    instructions: str | None = Field(
        default=None,
        max_length=4000,
        description="What the assignee should do, shown in every task.",
        examples=["Search the paper files in the Borchester office and scan what you find."],
    )


DataSourceCreate = Annotated[
    SqlSourceCreate | HttpSourceCreate | TaskSourceCreate, Field(discriminator="kind")
]

DATA_SOURCE_CREATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "sql": {
        "summary": "A PostgreSQL CRM with its dataset map (YAML text)",
        "value": {
            "name": "crm",
            "kind": "sql",
            "description": "Sales CRM (PostgreSQL)",
            "url": "postgresql+asyncpg://dsr_reader:s3cret@db.internal:5432/crm",
            "dataset_map": (
                "subject_table: contacts\n"
                "categories:\n"
                "  contact: {description: Email and phone, erasure: delete}\n"
                "  financial: {description: Orders, erasure: retain,\n"
                '              retain_reason: "financial records, 6 years, HMRC"}\n'
                "relations:\n"
                "  - {from: orders.customer_id, to: contacts.customer_id}\n"
                "tables:\n"
                "  contacts:\n"
                "    primary_key: customer_id\n"
                "    identity_columns: {email: email, customer_id: customer_id}\n"
                "    columns:\n"
                "      customer_id: {category: contact, provided_by_subject: false}\n"
                "      email: {category: contact, provided_by_subject: true}\n"
                "  orders:\n"
                "    primary_key: order_id\n"
                "    identity_columns: {customer_id: customer_id}\n"
                "    columns:\n"
                "      order_id: {category: financial, provided_by_subject: false}\n"
                "      customer_id: {category: financial, provided_by_subject: false}\n"
                "      amount: {category: financial, provided_by_subject: true}\n"
            ),
        },
    },
    "http": {
        "summary": "A billing system implementing the REST contract",
        "value": {
            "name": "billing",
            "kind": "http",
            "description": "Billing platform",
            "base_url": "https://billing.internal.example.com/dsr",
            "auth_token": "bl_live_7c1f0e2a9b",
        },
    },
    "task": {
        "summary": "Paper records searched by the office team",
        "value": {
            "name": "paper_files",
            "kind": "task",
            "description": "Paper files in the Borchester office",
            "assignee_client_id": "integ_5hM2kQ",
            "instructions": "Search the paper files and scan what you find.",
        },
    },
}


class DatasetMapSummary(BaseModel):
    subject_table: str | None = None
    tables: list[str] = Field(description="The mapped tables.")
    categories: dict[str, str] = Field(
        description="Each data category with its erasure strategy "
        "(`delete`, `null`, `mask`, `retain`)."
    )
    retained: dict[str, str] = Field(
        default_factory=dict,
        description="The categories kept on erasure, with their legal reason.",
    )


class SqlConfigPublic(BaseModel):
    url: str = Field(description="The database URL without its password.")
    dataset_map: DatasetMapSummary


class HttpConfigPublic(BaseModel):
    base_url: str


class TaskConfigPublic(BaseModel):
    assignee_client_id: str
    instructions: str | None = None


_PUBLIC_COMMON: dict[str, Any] = {
    "has_credentials": True,
    "active": True,
    "last_tested_at": "2026-11-22T09:30:12Z",
    "last_test_ok": True,
    "last_test_detail": None,
    "created_at": "2026-11-22T09:30:12Z",
}
DATA_SOURCE_EXAMPLES: list[dict[str, Any]] = [
    {
        "id": "6a1d0c57-2f3e-4b8a-9c61-0d4e5f7a8b92",
        "name": "crm",
        "kind": "sql",
        "description": "Sales CRM (PostgreSQL)",
        "config": {
            "url": "postgresql+asyncpg://dsr_reader@db.internal:5432/crm",
            "dataset_map": {
                "subject_table": "contacts",
                "tables": ["contacts", "orders"],
                "categories": {"contact": "delete", "financial": "retain"},
                "retained": {"financial": "financial records, 6 years, HMRC"},
            },
        },
        **_PUBLIC_COMMON,
    },
    {
        "id": "0f3b7e21-9d84-4c2a-b5e6-7a1c2d3e4f50",
        "name": "billing",
        "kind": "http",
        "description": "Billing platform",
        "config": {"base_url": "https://billing.internal.example.com/dsr"},
        **_PUBLIC_COMMON,
    },
    {
        "id": "c2e4a6b8-1d3f-4e5a-8b7c-9d0e1f2a3b4c",
        "name": "paper_files",
        "kind": "task",
        "description": "Paper files in the Borchester office",
        "config": {
            "assignee_client_id": "integ_5hM2kQ",
            "instructions": "Search the paper files and scan what you find.",
        },
        **_PUBLIC_COMMON,
        "has_credentials": False,
    },
]


class DataSourcePublic(BaseModel):
    """A registered data source; credentials are never shown."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [DATA_SOURCE_EXAMPLES[0], DATA_SOURCE_EXAMPLES[1], DATA_SOURCE_EXAMPLES[2]]
        }
    )

    id: uuid.UUID
    name: str
    kind: SourceKind
    description: str | None = None
    config: SqlConfigPublic | HttpConfigPublic | TaskConfigPublic = Field(
        description="What is safe to show: for `sql` the URL without password and a summary "
        "of the dataset map; for `http` the base URL; for `task` the assignee and "
        "instructions."
    )
    has_credentials: bool = Field(description="Whether encrypted credentials are stored.")
    active: bool
    last_tested_at: datetime | None = Field(
        description="When the connection was last tested (at registration and by `/test`)."
    )
    last_test_ok: bool | None = Field(
        default=None, description="The outcome of that test; null if never tested."
    )
    last_test_detail: str | None = Field(
        default=None, description="Why that test failed (never contains credentials)."
    )
    created_at: datetime


class DataSourceTestResult(BaseModel):
    """Whether the source answered, and if not why (never contains credentials)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ok": True, "detail": None, "tested_at": "2026-11-22T09:30:12Z"},
                {
                    "ok": False,
                    "detail": "source crm: could not connect to the database",
                    "tested_at": "2026-11-22T09:31:40Z",
                },
            ]
        }
    )

    ok: bool
    detail: str | None = None
    tested_at: datetime
