"""Receipts verify with a real JOSE validator (PyJWT) against the published JWKS, and stop
verifying once one byte changes; the key survives a restart (kept in its file)."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from services.exchange.receipts import load_receipt_signer
from services.exchange.tests.conftest import make_partner, push, push_body


def verify(receipt: dict, jwks: dict) -> dict:
    header = jwt.get_unverified_header(receipt["signature"])
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == header["kid"])
    return jwt.decode(receipt["signature"], key=key, algorithms=["EdDSA"])


async def test_a_receipt_verifies_against_the_published_keys_and_not_after_a_change(exchange):
    _, secret = await make_partner(exchange)
    receipt = (await push(exchange, secret, push_body())).json()
    jwks = (await exchange.get("/.well-known/jwks.json")).json()
    assert [k["kty"] for k in jwks["keys"]] == ["OKP"] and "d" not in jwks["keys"][0]
    payload = verify(receipt, jwks)
    assert payload == {k: v for k, v in receipt.items() if k != "signature"}
    # One byte of the signed payload changed (duplicate: false → true): the signature fails.
    head, body, signature = receipt["signature"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["body_sha256"] = ("0" if claims["body_sha256"][0] != "0" else "1") + claims["body_sha256"][1:]
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidSignatureError):
        verify({"signature": f"{head}.{forged_body}.{signature}"}, jwks)
    # … and so does a changed byte of the signature itself.
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    with pytest.raises(jwt.InvalidSignatureError):
        verify({"signature": f"{head}.{body}.{flipped}"}, jwks)
    duplicate = (await push(exchange, secret, push_body())).json()
    assert verify(duplicate, jwks)["duplicate"] is True


def test_the_receipt_key_is_made_once_and_kept(tmp_path):
    path = tmp_path / "keys" / "receipt.json"
    first = load_receipt_signer(str(path))
    assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
    again = load_receipt_signer(str(path))
    assert again.kid == first.kid and again.public_jwk() == first.public_jwk()
    token = first.sign({"a": 1})
    assert jwt.decode(token, key=jwt.PyJWK(again.public_jwk()), algorithms=["EdDSA"]) == {"a": 1}
