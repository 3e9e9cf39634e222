"""Notification signatures: the published Ed25519 vector, both key kinds, every refusal."""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.payment.domain import signature

# RFC 8032 §7.1, TEST 1: the secret key and its public key.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE_OF_EMPTY = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_keys_load_from_base64_der_and_pem_and_match_rfc_8032():
    private = Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET)
    loaded = signature.load_private_key(signature.private_text(private))
    assert isinstance(loaded, Ed25519PrivateKey) and loaded.sign(b"") == RFC8032_SIGNATURE_OF_EMPTY
    public = signature.load_public_key(signature.public_text(private))
    assert public.public_bytes(Encoding.Raw, PublicFormat.Raw) == RFC8032_PUBLIC
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    assert (
        signature.load_public_key(pem.replace("\n", "\\n")).public_bytes(Encoding.Raw, PublicFormat.Raw)
        == RFC8032_PUBLIC
    )
    with pytest.raises(ValueError):
        signature.load_public_key("not a key!")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError):
        signature.load_public_key(signature.public_text(small))


def test_the_message_is_timestamp_nonce_body_each_followed_by_a_newline():
    assert signature.message("1700000000", "abc", b'{"a":1}') == b'1700000000\nabc\n{"a":1}\n'


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_a_signed_notification_verifies_with_the_public_key_only(kind):
    key = Ed25519PrivateKey.generate() if kind == "ed25519" else rsa.generate_private_key(65537, 2048)
    keys = {"s1": signature.load_public_key(signature.public_text(key))}
    now = int(time.time())
    body = b'{"id":"1"}'
    headers = {k.lower(): v for k, v in signature.signed_headers(key, "s1", body, timestamp=now,
                                                                   nonce="n" * 16).items()}  # fmt: skip
    verified = signature.verify(keys, headers, body, now=now, max_age=300)
    assert (verified.serial, verified.nonce, verified.timestamp) == ("s1", "n" * 16, now)
    with pytest.raises(signature.NotificationRejected) as tampered:
        signature.verify(keys, headers, body + b" ", now=now, max_age=300)
    assert tampered.value.reason == "bad-signature"


def test_every_refusal_has_its_reason():
    key = Ed25519PrivateKey.generate()
    keys = {"s1": key.public_key()}
    now = int(time.time())
    body = b"{}"
    good = {k.lower(): v for k, v in signature.signed_headers(key, "s1", body, timestamp=now, nonce="n" * 16).items()}

    def reason(**changes):
        headers = {**good, **changes}
        with pytest.raises(signature.NotificationRejected) as refused:
            signature.verify(keys, {k: v for k, v in headers.items() if v is not None}, body, now=now, max_age=300)
        return refused.value.reason

    assert reason(**{"pay-signature": None}) == "missing"
    assert reason(**{"pay-serial": "s2"}) == "unknown-key"
    assert reason(**{"pay-serial": "s1\n"}) == "unknown-key"
    assert reason(**{"pay-timestamp": "-5"}) == "bad-timestamp"
    assert reason(**{"pay-timestamp": str(now - 301)}) == "stale"
    assert reason(**{"pay-timestamp": str(now + 301)}) == "stale"
    assert reason(**{"pay-nonce": "short"}) == "bad-nonce"
    assert reason(**{"pay-signature": "***"}) == "bad-signature"
    assert reason(**{"pay-signature": base64.b64encode(b"x" * 64).decode()}) == "bad-signature"
    assert reason(**{"pay-nonce": "m" * 16}) == "bad-signature"  # the nonce is signed
