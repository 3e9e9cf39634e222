"""Uploaded materials: type sniffed from the bytes (never trusted from the client), a size limit,
SHA-256, stored through a blob-store interface (a local directory here; an S3-compatible store is
a second implementation of the same two methods)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import Problem
from kit.settings import DATA_DIR
from services.caseflow.models import Blob
from services.caseflow.settings import Settings

# Phones send JPEG (or HEIC from iPhones), screenshots are PNG, scans are PDF.
_HEIC_BRANDS = (b"heic", b"heix", b"mif1", b"heim", b"heis")


def sniff(content: bytes) -> str | None:
    """The content type by magic bytes, or None for anything we do not accept."""
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith(b"%PDF-"):
        return "application/pdf"
    if content[4:8] == b"ftyp" and content[8:12] in _HEIC_BRANDS:
        return "image/heic"
    return None


class BlobStore(Protocol):
    async def put(self, key: str, content: bytes) -> None: ...
    async def get(self, key: str) -> bytes: ...


class LocalBlobStore:
    """Files under a directory, two levels of fan-out; written to a temporary name, then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    async def put(self, key: str, content: bytes) -> None:
        def write() -> None:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".part")
            temporary.write_bytes(content)
            temporary.replace(path)

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)


async def store_upload(
    session: AsyncSession, store: BlobStore, *, owner: str, content: bytes, filename: str | None, max_bytes: int
) -> Blob:
    if len(content) > max_bytes:
        raise Problem(413, "too-large", "File too large", f"at most {max_bytes} bytes", rule="max_size")
    if not content:
        raise Problem(422, "validation", "Request is not valid", "file: empty",
                      errors=[{"field": "file", "rule": "not_empty", "message": "empty file"}])  # fmt: skip
    content_type = sniff(content)
    if content_type is None:
        raise Problem(415, "unsupported-type", "Unsupported file type", "upload JPEG, PNG, HEIC or PDF",
                      rule="content_type")  # fmt: skip
    blob = Blob(
        id=str(uuid.uuid4()),
        owner=owner,
        sha256=hashlib.sha256(content).hexdigest(),
        content_type=content_type,
        size=len(content),
        filename=(filename or "")[:200] or None,
        created_at=datetime.now(UTC),
    )
    await store.put(blob.id, content)
    session.add(blob)
    await session.flush()
    return blob


def make_blob_store(settings: Settings) -> BlobStore:
    """The blob store the settings name (``blob_store``)."""
    return LocalBlobStore(Path(settings.blob_dir or DATA_DIR / "caseflow-blobs"))
