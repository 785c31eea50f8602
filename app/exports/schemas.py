"""The exports API's models: the file formats and an export as listed on a request."""

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


class ExportPublic(BaseModel):
    """An access or portability file produced by fulfilment."""

    id: uuid.UUID
    format: ExportFormat = Field(description="`json`: one document; `csv`: a zip of CSV files.")
    file_name: str
    size_bytes: int
    sha256: str = Field(description="SHA-256 of the file, to check a download is intact.")
    created_at: datetime
    expires_at: datetime = Field(description="After this the file is deleted.")
    expired: bool
    download_count: int = Field(description="Downloads so far, by link or through the API.")
    download_url: str | None = Field(
        description="The subject's personal signed link (no login needed); null once expired."
    )
