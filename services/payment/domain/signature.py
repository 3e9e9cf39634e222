"""The gateway's notification signatures (WeChat Pay API v3 style) — pure.

The gateway signs each notification it POSTs with its private key and sends four headers:

- ``Pay-Serial``: which of its keys signed (the payer side looks the public key up by serial:
  ``PAYMENT_PROVIDER_KEYS``; two serials during a rotation);
- ``Pay-Timestamp``: Unix seconds; refused when more than ``max_age`` from the receiver's clock;
- ``Pay-Nonce``: 16–64 of ``[A-Za-z0-9_-]``; refused when seen before (the receiver remembers);
- ``Pay-Signature``: base64 of the signature over the message ``timestamp\\nnonce\\nbody\\n``
  (body = the raw request bytes), exactly as WeChat Pay v3 builds its verification string.

The algorithm is the KEY's, never the sender's choice: an Ed25519 key verifies Ed25519, an RSA key
RSA-SHA256 with PKCS#1 v1.5 padding (WeChat Pay's ``WECHATPAY2-SHA256-RSA2048``). Any other key
type is refused when the settings are read.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

SERIAL_HEADER = "pay-serial"
TIMESTAMP_HEADER = "pay-timestamp"
NONCE_HEADER = "pay-nonce"
SIGNATURE_HEADER = "pay-signature"

_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SERIAL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PublicKey = Ed25519PublicKey | RSAPublicKey
PrivateKey = Ed25519PrivateKey | RSAPrivateKey


class NotificationRejected(Exception):
    """Why a notification is refused; ``reason`` is a short slug (logs, the problem's ``reason``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What is signed: ``timestamp\\nnonce\\nbody\\n``."""
    return timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"


def _der_or_pem(text: str) -> bytes:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.replace("\\n", "\n").encode()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a key is PEM or base64 of DER") from exc


def load_public_key(text: str) -> PublicKey:
    """A public key from PEM (SubjectPublicKeyInfo) or base64 DER; Ed25519 or RSA (≥ 2048 bits)."""
    raw = _der_or_pem(text)
    key: Any = (serialization.load_pem_public_key(raw) if raw.startswith(b"-----BEGIN")
                else serialization.load_der_public_key(raw))  # fmt: skip
    if isinstance(key, RSAPublicKey) and key.key_size < 2048:
        raise ValueError("an RSA key must have at least 2048 bits")
    if not isinstance(key, Ed25519PublicKey | RSAPublicKey):
        raise ValueError("only Ed25519 and RSA keys sign notifications")
    return key


def load_private_key(text: str) -> PrivateKey:
    """A private key from PEM (PKCS#8) or base64 DER (the sandbox gateway's signing key)."""
    raw = _der_or_pem(text)
    key: Any = (serialization.load_pem_private_key(raw, password=None) if raw.startswith(b"-----BEGIN")
                else serialization.load_der_private_key(raw, password=None))  # fmt: skip
    if not isinstance(key, Ed25519PrivateKey | RSAPrivateKey):
        raise ValueError("only Ed25519 and RSA keys sign notifications")
    return key


def public_text(key: PublicKey | PrivateKey) -> str:
    """base64 of the public key's DER (SubjectPublicKeyInfo): what PAYMENT_PROVIDER_KEYS holds."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey | RSAPrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def private_text(key: PrivateKey) -> str:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    return base64.b64encode(der).decode()


def sign(key: PrivateKey, timestamp: str, nonce: str, body: bytes) -> str:
    data = message(timestamp, nonce, body)
    if isinstance(key, Ed25519PrivateKey):
        signature = key.sign(data)
    else:
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def signed_headers(key: PrivateKey, serial: str, body: bytes, *, timestamp: int, nonce: str) -> dict[str, str]:
    """The four headers of a signed notification."""
    ts = str(timestamp)
    return {"Pay-Serial": serial, "Pay-Timestamp": ts, "Pay-Nonce": nonce, "Pay-Signature": sign(key, ts, nonce, body)}


@dataclass(frozen=True)
class Verified:
    serial: str
    nonce: str
    timestamp: int


def verify(keys: Mapping[str, PublicKey], headers: Mapping[str, str], body: bytes, *, now: float,
           max_age: int) -> Verified:  # fmt: skip
    """Check one notification (no nonce bookkeeping: the caller remembers nonces); raises
    ``NotificationRejected`` with reason missing, unknown-key, bad-timestamp, stale, bad-nonce or
    bad-signature."""
    serial = headers.get(SERIAL_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    nonce = headers.get(NONCE_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not (serial and timestamp and nonce and signature):
        raise NotificationRejected("missing", "Pay-Serial, Pay-Timestamp, Pay-Nonce and Pay-Signature are required")
    key = keys.get(serial) if _SERIAL.match(serial) else None
    if key is None:
        raise NotificationRejected("unknown-key", "no key with this Pay-Serial")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise NotificationRejected("bad-timestamp", "Pay-Timestamp must be Unix seconds")
    if abs(now - int(timestamp)) > max_age:
        raise NotificationRejected("stale", f"Pay-Timestamp is more than {max_age} s from the receiver's clock")
    if not _NONCE.match(nonce):
        raise NotificationRejected("bad-nonce", "Pay-Nonce must be 16-64 characters of A-Z a-z 0-9 _ -")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise NotificationRejected("bad-signature", "Pay-Signature is not base64") from None
    data = message(timestamp, nonce, body)
    try:
        if isinstance(key, Ed25519PublicKey):
            key.verify(raw, data)
        else:
            key.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise NotificationRejected("bad-signature", "signature does not match") from None
    return Verified(serial, nonce, int(timestamp))
