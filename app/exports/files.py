"""Export files on disk: private, hashed as written, under their final name only when complete."""

import asyncio
import hashlib
import os
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from app.data_sources.connectors.base import ColumnInfo, EncodedTable, RecordBatch

FORMATS = ("json", "csv")
SUFFIXES = {"json": ".json", "csv": ".zip"}
MEDIA_TYPES = {"json": "application/json", "csv": "application/zip"}

CHUNK = 1 << 20

T = TypeVar("T")


@dataclass(frozen=True)
class ExportFile:
    """A finished export file, ready to be recorded (``exports.record_exports``)."""

    export_id: uuid.UUID
    format: str
    path: Path
    file_name: str
    size_bytes: int
    sha256: str


# ---------------------------------------------------------------- files


def private_directory(directory: Path) -> None:
    """Create ``directory`` (and missing parents) readable by the service's user only."""
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)


def create_private(path: Path, buffering: int = CHUNK) -> IO[bytes]:
    """A new file (never an existing one) readable by the service's user only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return open(descriptor, "wb", buffering=buffering)


class HashingFile:
    """A new private file that hashes what is written (no second read for the sha256).

    It has no ``seek``: zipfile then writes entries in one forward pass.
    """

    def __init__(self, path: Path) -> None:
        self.file = create_private(path)
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.file.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def seal(file: HashingFile, temp: Path, final: Path) -> tuple[int, str]:
    """Flush to disk and move under the final name: (size, sha256)."""
    file.flush()
    os.fsync(file.file.fileno())
    file.close()
    os.replace(temp, final)
    return file.size, file.digest.hexdigest()


def unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


async def run_all(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """Run concurrently; on the first failure (or cancellation) stop the others and re-raise."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


BlockKey = tuple[str, str, tuple[ColumnInfo, ...]]


def block_key(item: RecordBatch | EncodedTable) -> BlockKey:
    """What makes rows one block of a file: the same source, table and columns."""
    return (item.source, item.table, item.columns)
