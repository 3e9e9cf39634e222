import asyncio
import json
import time
from datetime import UTC, datetime

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from kit.auth import InvalidToken, TokenVerifier, public_keys_from_jwks


def make_key(kid: str):
    private = Ed25519PrivateKey.generate()
    jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    jwk["kid"] = kid
    return private, jwk


def claims(**overrides):
    now = int(datetime.now(UTC).timestamp())
    values = {"sub": "11010519491231002X", "iss": "yiwang-identity", "aud": "yiwang", "iat": now, "exp": now + 600}
    values.update(overrides)
    return values


@pytest.fixture
def setup():
    private, jwk = make_key("k1")
    fetches = []

    async def fetch():
        fetches.append(1)
        return public_keys_from_jwks({"keys": [jwk]})

    verifier = TokenVerifier(fetch, issuer="yiwang-identity", audience="yiwang", min_refetch_interval=60)
    return private, verifier, fetches


def sign(private, kid="k1", **overrides):
    return jwt.encode(claims(**overrides), private, algorithm="EdDSA", headers={"kid": kid})


async def test_valid_token_verified_and_cached(setup):
    private, verifier, fetches = setup
    token = sign(private)
    assert (await verifier.verify(token))["sub"] == "11010519491231002X"
    assert (await verifier.verify(token))["sub"] == "11010519491231002X"
    assert len(fetches) == 1 and token in verifier._verified


@pytest.mark.parametrize("overrides", [{"aud": "other"}, {"iss": "evil"}, {"exp": int(time.time()) - 5}])
async def test_wrong_claims_refused(setup, overrides):
    private, verifier, _ = setup
    with pytest.raises(InvalidToken):
        await verifier.verify(sign(private, **overrides))


async def test_cached_token_still_expires(setup):
    private, verifier, _ = setup
    token = sign(private, exp=int(time.time()) + 1)
    await verifier.verify(token)
    assert token in verifier._verified
    await asyncio.sleep(2.1)
    with pytest.raises(InvalidToken, match="expired"):
        await verifier.verify(token)


async def test_cached_token_dropped_when_its_key_is_withdrawn(setup):
    private, verifier, _ = setup
    token = sign(private)
    await verifier.verify(token)
    verifier.keys = {}  # the JWKS no longer publishes k1; refetch is rate-limited, so it stays unknown
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_algorithm_confusion_and_none_refused(setup):
    private, verifier, _ = setup
    await verifier.verify(sign(private))  # load keys
    public_pem = private.public_key().public_bytes_raw()
    hs = jwt.encode(claims(), public_pem, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(InvalidToken, match="algorithm"):
        await verifier.verify(hs)
    none = jwt.encode(claims(), None, algorithm="none", headers={"kid": "k1"})
    with pytest.raises(InvalidToken, match="algorithm"):
        await verifier.verify(none)


async def test_unknown_kid_flood_fetches_once_per_interval(setup):
    _, verifier, fetches = setup
    stranger, _ = make_key("k-unknown")
    for i in range(50):
        with pytest.raises(InvalidToken):
            await verifier.verify(sign(stranger, kid=f"bad-{i}"))
    assert len(fetches) == 1
