"""Uploaded materials: type sniffed from the bytes (never trusted from the client), a size limit,
SHA-256, stored through a blob-store interface: a local directory by default, or an S3-compatible
object store (MinIO, Aliyun OSS, Tencent COS, AWS S3) when ``blob_store = "s3"``."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import Problem
from kit.settings import DATA_DIR
from kit.text import text_problem
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
    """Bytes by key. ``get`` of a key never stored raises ``KeyError``; any other failure raises."""

    async def put(self, key: str, content: bytes) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def close(self) -> None: ...


class LocalBlobStore:
    """Files under a directory, two levels of fan-out; written to a temporary name, then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    async def put(self, key: str, content: bytes) -> None:
        """Store ``content`` under ``key``, replacing what was there."""

        def write() -> None:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".part")
            temporary.write_bytes(content)
            temporary.replace(path)

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; ``KeyError`` if there are none."""
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError:
            raise KeyError(key) from None

    async def close(self) -> None:
        """Nothing to release: every call opens and closes its own file."""


class S3BlobStore:
    """Objects in one bucket of an S3-compatible store, reached at ``endpoint_url``.

    One client per store, created on first use and released by ``close``. The bucket is created on
    first use when missing; ops may pre-create it (then the credentials need only list, read and write
    it, no CreateBucket). Errors from the store (unreachable, refused credentials) are raised, never swallowed.
    """

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        bucket: str,
        region: str,
        access_key: str | None,
        secret_key: SecretStr | None,
        connect_timeout: float = 3.0,
        read_timeout: float = 20.0,
        max_attempts: int = 3,
        addressing_style: Literal["auto", "path", "virtual"] = "auto",
    ) -> None:
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.region = region
        self._access_key = access_key
        # Kept wrapped until the client is built so that no repr, log line or traceback shows it.
        self._secret_key = secret_key
        self._config = AioConfig(
            # botocore waits 60 s to connect and retries 5 times by default: an unreachable store
            # would hold an upload for minutes instead of failing it.
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            # botocore >= 1.36 adds CRC checksum headers / aws-chunked bodies by default, which
            # OSS, COS and older MinIO reject; send them only where the API requires them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # With an endpoint URL "auto" means the bucket in the path (what MinIO expects); Aliyun
            # OSS refuses that and needs "virtual" (the bucket in the host name).
            s3={"addressing_style": addressing_style},
        )
        self._exit_stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._opening = asyncio.Lock()

    async def _ready_client(self) -> Any:
        # The lock keeps concurrent first calls from building two clients or racing to create the bucket.
        async with self._opening:
            if self._client is None:
                secret = self._secret_key.get_secret_value() if self._secret_key else None
                client = await self._exit_stack.enter_async_context(
                    get_session().create_client(
                        "s3",
                        endpoint_url=self.endpoint_url,
                        region_name=self.region,
                        # None (not "") lets botocore fall back to its usual chain (env, instance role).
                        aws_access_key_id=self._access_key or None,
                        aws_secret_access_key=secret or None,
                        config=self._config,
                    )
                )
                try:
                    await self._ensure_bucket(client)
                except BaseException:
                    await self._exit_stack.aclose()
                    raise
                self._client = client
            return self._client

    async def _ensure_bucket(self, client: Any) -> None:
        try:
            await client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as error:
            # Only "not found" means create it; 403 and the rest are misconfiguration to report.
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
        extra = {} if self.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
        try:
            await client.create_bucket(Bucket=self.bucket, **extra)
        except client.exceptions.BucketAlreadyOwnedByYou:
            return  # another process created it between our head and create
        structlog.get_logger().info("blob bucket created", bucket=self.bucket, endpoint=self.endpoint_url)

    async def put(self, key: str, content: bytes) -> None:
        """Store ``content`` under ``key``, replacing what was there."""
        client = await self._ready_client()
        await client.put_object(Bucket=self.bucket, Key=key, Body=content)

    async def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; ``KeyError`` if there are none."""
        client = await self._ready_client()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=key)
        except client.exceptions.NoSuchKey:
            raise KeyError(key) from None
        async with response["Body"] as body:
            return await body.read()

    async def close(self) -> None:
        """Close the client (its connection pool); the next call opens a new one."""
        async with self._opening:
            await self._exit_stack.aclose()
            self._client = None


async def store_upload(
    session: AsyncSession, store: BlobStore, *, owner: str, content: bytes, filename: str | None, max_bytes: int
) -> Blob:
    """Check an upload (size, type by its bytes), store it under a new id and record it as ``owner``'s."""
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
        # Only metadata: a name that is not safe one-line text (NUL, bidi overrides, …) is not kept.
        filename=(filename or "")[:200] if filename and text_problem(filename[:200], multiline=False) is None else None,
        created_at=datetime.now(UTC),
    )
    await store.put(blob.id, content)
    session.add(blob)
    await session.flush()
    return blob


def make_blob_store(settings: Settings) -> BlobStore:
    """The blob store the settings name (``blob_store``): a local directory or an S3-compatible store."""
    if settings.blob_store == "s3":
        return S3BlobStore(
            endpoint_url=settings.s3_endpoint_url or None,  # none: AWS S3's own endpoint for the region
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
        )
    return LocalBlobStore(Path(settings.blob_dir or DATA_DIR / "caseflow-blobs"))
