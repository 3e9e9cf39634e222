"""Signers and the published key set: RFC 8037's own example key, rotation, refusals."""

from __future__ import annotations

import pytest

from services.licence.domain.errors import BadSignature, InvalidKeySet, UnknownKey, UnsupportedAlgorithm
from services.licence.domain.signing import ALG_EDDSA, ALG_SM2, Ed25519Signer, KeySet, key_set_document

# RFC 8037 appendix A.1/A.4: the Ed25519 JWK (the RFC 8032 test 1 key) and its JWS over
# "Example of Ed25519 signing" with header {"alg":"EdDSA"}. Ed25519 is deterministic, so the
# signature must come out byte for byte.
RFC8037_PRIVATE = {
    "kty": "OKP",
    "crv": "Ed25519",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    "kid": "rfc8037",
}
RFC8037_SIGNING_INPUT = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
RFC8037_SIGNATURE = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"


def test_rfc8037_example_key_and_signature():
    from services.licence.domain.signing import _b64url

    signer = Ed25519Signer.from_private_jwk(RFC8037_PRIVATE)
    assert signer.public_jwk()["x"] == RFC8037_PRIVATE["x"]
    signature = signer.sign(RFC8037_SIGNING_INPUT)
    assert _b64url(signature) == RFC8037_SIGNATURE
    key_set = KeySet.from_jwks({"keys": [signer.public_jwk()]})
    key_set.verify(kid="rfc8037", alg=ALG_EDDSA, data=RFC8037_SIGNING_INPUT, signature=signature)


def test_rotated_out_keys_still_verify_and_unknown_keys_do_not():
    old = Ed25519Signer.generate(kid="yw24")
    new = Ed25519Signer.generate(kid="yw25")
    published = KeySet.from_jwks(key_set_document(new, retired=[old.public_jwk()]))
    assert published.kids == ["yw25", "yw24"]
    data = b"licence"
    published.verify(kid="yw24", alg=None, data=data, signature=old.sign(data))
    published.verify(kid="yw25", alg=None, data=data, signature=new.sign(data))
    with pytest.raises(BadSignature):
        published.verify(kid="yw25", alg=None, data=data, signature=old.sign(data))
    with pytest.raises(UnknownKey):
        published.verify(kid="yw23", alg=None, data=data, signature=old.sign(data))


def test_a_tampered_message_fails():
    signer = Ed25519Signer.generate(kid="k1")
    key_set = KeySet.from_jwks({"keys": [signer.public_jwk()]})
    signature = signer.sign(b"abc")
    with pytest.raises(BadSignature):
        key_set.verify(kid="k1", alg=ALG_EDDSA, data=b"abd", signature=signature)


def test_the_key_decides_the_algorithm():
    signer = Ed25519Signer.generate(kid="k1")
    key_set = KeySet.from_jwks({"keys": [signer.public_jwk()]})
    with pytest.raises(BadSignature) as caught:
        key_set.verify(kid="k1", alg=ALG_SM2, data=b"x", signature=signer.sign(b"x"))
    assert caught.value.rule == "alg_mismatch"


def test_sm2_keys_load_but_cannot_verify():
    key_set = KeySet.from_jwks({"keys": [{"kty": "EC", "crv": "SM2", "x": "AA", "y": "AA", "kid": "seal1"}]})
    with pytest.raises(UnsupportedAlgorithm):
        key_set.verify(kid="seal1", alg=ALG_SM2, data=b"x", signature=b"y" * 64)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([], "keys"),
        ({"keys": []}, "keys"),
        ({"keys": ["x"]}, "keys[0]"),
        (
            {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]},
            "keys[0].kid",
        ),
        ({"keys": [{"kty": "RSA", "kid": "a", "n": "x", "e": "AQAB"}]}, "keys[0].kty"),
        ({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "short", "kid": "a"}]}, "keys[0].x"),
        ({"keys": [RFC8037_PRIVATE]}, "keys[0].d"),
    ],
)
def test_bad_key_sets_name_the_member(document, field):
    with pytest.raises(InvalidKeySet) as caught:
        KeySet.from_jwks(document)
    assert caught.value.field == field


def test_duplicate_kids_are_refused():
    a = Ed25519Signer.generate(kid="same")
    b = Ed25519Signer.generate(kid="same")
    with pytest.raises(InvalidKeySet):
        key_set_document(a, retired=[b.public_jwk()])
