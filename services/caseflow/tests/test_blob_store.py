"""Both blob stores through the same tests; the S3 one against moto's S3 server on loopback (real HTTP)."""

from __future__ import annotations

import asyncio
import random
import uuid

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto.server import ThreadedMotoServer
from pydantic import SecretStr
from structlog.testing import capture_logs

from kit.natsd import free_port
from services.caseflow.blobs import LocalBlobStore, S3BlobStore, make_blob_store
from services.caseflow.settings import Settings

SECRET = "test-secret-key-never-logged"
MEBIBYTE = random.Random(7).randbytes(1024 * 1024)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()  # returns once the server is accepting connections
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3_store(endpoint: str, bucket: str | None = None, **options) -> S3BlobStore:
    return S3BlobStore(
        endpoint_url=endpoint,
        bucket=bucket or f"materials-{uuid.uuid4().hex[:12]}",
        region="us-east-1",
        access_key="test-access",
        secret_key=SecretStr(SECRET),
        **options,
    )


def inspector(endpoint: str):
    """A plain boto3 client to look at the server independently of the store under test."""
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


def bucket_names(endpoint: str) -> set[str]:
    return {bucket["Name"] for bucket in inspector(endpoint).list_buckets()["Buckets"]}


@pytest.fixture(params=["local", "s3"])
async def store(request, tmp_path, s3_endpoint):
    made = LocalBlobStore(tmp_path / "blobs") if request.param == "local" else s3_store(s3_endpoint)
    yield made
    await made.close()


@pytest.mark.parametrize("content", [MEBIBYTE, JPEG, b"x"], ids=["1MiB", "jpeg", "one-byte"])
async def test_get_returns_exactly_what_was_put(store, content):
    key = str(uuid.uuid4())
    await store.put(key, content)

    assert await store.get(key) == content


async def test_put_replaces_and_keys_are_separate(store):
    await store.put("a-key", b"first")
    await store.put("b-key", b"other")
    await store.put("a-key", b"second")

    assert await store.get("a-key") == b"second"
    assert await store.get("b-key") == b"other"


async def test_get_of_a_missing_key_raises_key_error(store):
    await store.put("present", JPEG)  # the bucket / directory exists; only the key is missing

    with pytest.raises(KeyError):
        await store.get(str(uuid.uuid4()))


async def test_get_before_anything_was_stored_raises_key_error(store):
    with pytest.raises(KeyError):
        await store.get(str(uuid.uuid4()))


async def test_the_bucket_is_created_on_first_use(s3_endpoint):
    store = s3_store(s3_endpoint)
    assert store.bucket not in bucket_names(s3_endpoint)

    with capture_logs() as logs:
        await store.put("k", b"v")
    await store.close()

    assert store.bucket in bucket_names(s3_endpoint)
    assert inspector(s3_endpoint).get_object(Bucket=store.bucket, Key="k")["Body"].read() == b"v"
    assert [entry["event"] for entry in logs] == ["blob bucket created"]
    assert SECRET not in repr(logs)


async def test_a_pre_created_bucket_is_used_as_it_is(s3_endpoint):
    bucket = f"precreated-{uuid.uuid4().hex[:12]}"
    inspector(s3_endpoint).create_bucket(Bucket=bucket)
    inspector(s3_endpoint).put_object(Bucket=bucket, Key="earlier", Body=b"kept")
    store = s3_store(s3_endpoint, bucket)

    with capture_logs() as logs:
        await store.put("later", b"new")

    assert await store.get("earlier") == b"kept"
    assert logs == []
    await store.close()


async def test_close_then_use_again_opens_a_new_client(s3_endpoint):
    store = s3_store(s3_endpoint)
    await store.put("k", b"before")
    await store.close()

    assert await store.get("k") == b"before"
    await store.close()


async def test_an_error_from_the_store_is_raised(s3_endpoint):
    store = s3_store(s3_endpoint, bucket="x")  # too short: the server refuses to create it

    with pytest.raises(ClientError) as raised:
        await store.put("k", b"v")
    assert raised.value.response["Error"]["Code"] == "InvalidBucketName"
    await store.close()


async def test_an_unreachable_store_raises_instead_of_hanging():
    store = s3_store(f"http://127.0.0.1:{free_port()}", connect_timeout=1, max_attempts=2)

    async with asyncio.timeout(15):  # fails the test rather than hanging it
        with pytest.raises(EndpointConnectionError):
            await store.put("k", b"v")
    await store.close()


def test_make_blob_store_follows_the_setting(tmp_path):
    local = make_blob_store(Settings(blob_store="local", blob_dir=str(tmp_path)))
    s3 = make_blob_store(
        Settings(
            blob_store="s3",
            s3_endpoint_url="http://127.0.0.1:9000",
            s3_bucket="case-materials",
            s3_region="cn-east-1",
            s3_access_key="access",
            s3_secret_key=SecretStr(SECRET),
        )
    )

    assert isinstance(local, LocalBlobStore) and local.root == tmp_path
    assert isinstance(s3, S3BlobStore)
    assert (s3.endpoint_url, s3.bucket, s3.region) == ("http://127.0.0.1:9000", "case-materials", "cn-east-1")
    assert SECRET not in repr(vars(s3))


def test_an_empty_endpoint_means_the_aws_default():
    s3 = make_blob_store(Settings(blob_store="s3", s3_endpoint_url=""))

    assert isinstance(s3, S3BlobStore) and s3.endpoint_url is None


async def test_refused_credentials_are_raised(s3_endpoint):
    # moto's documented switch: check signatures against its IAM (which knows no key of ours) from now on.
    httpx.post(f"{s3_endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()
    try:
        store = s3_store(s3_endpoint)
        with pytest.raises(ClientError) as raised:
            await store.put("k", b"v")
        await store.close()
    finally:
        httpx.post(f"{s3_endpoint}/moto-api/reset-auth", content=b"inf").raise_for_status()

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
