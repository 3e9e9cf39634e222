"""Receipts' signing key: Ed25519, its private JWK in EXCHANGE_RECEIPT_KEY_FILE (made on first
start when missing, as licence makes its development signing key), its public JWK published at
``GET /.well-known/jwks.json``. A receipt's ``signature`` is a compact JWS (EdDSA, header ``kid``)
whose payload is the receipt's other fields; a department verifies it with any JOSE library.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ReceiptSigner:
    """Signs receipts with one Ed25519 key."""

    def __init__(self, private: Ed25519PrivateKey, kid: str | None = None) -> None:
        self._private = private
        raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._x = _b64(raw)
        # RFC 7638 thumbprint: the kid changes with the key, never by hand.
        thumbprint = hashlib.sha256(json.dumps({"crv": "Ed25519", "kty": "OKP", "x": self._x},
                                               separators=(",", ":"), sort_keys=True).encode()).digest()  # fmt: skip
        self.kid = kid or "rcpt-" + _b64(thumbprint)[:16]

    @classmethod
    def generate(cls) -> ReceiptSigner:
        """A new random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_jwk(cls, jwk: dict[str, Any]) -> ReceiptSigner:
        """The key in an Ed25519 private JWK (``d``), keeping its ``kid`` when it has one."""
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not jwk.get("d"):
            raise ValueError("not an Ed25519 private JWK")
        return cls(Ed25519PrivateKey.from_private_bytes(_unb64(jwk["d"])), kid=jwk.get("kid"))

    def private_jwk(self) -> dict[str, Any]:
        """The key as stored in the key file (secret: ``d``)."""
        d = self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return {"kty": "OKP", "crv": "Ed25519", "x": self._x, "d": _b64(d), "kid": self.kid}

    def public_jwk(self) -> dict[str, Any]:
        """The public half, as the JWKS lists it."""
        return {"kty": "OKP", "crv": "Ed25519", "x": self._x, "kid": self.kid, "use": "sig", "alg": "EdDSA"}

    def jwks(self) -> dict[str, Any]:
        """The published key set (one key; a rotated-out key would stay listed beside it)."""
        return {"keys": [self.public_jwk()]}

    def sign(self, payload: dict[str, Any]) -> str:
        """Compact JWS (EdDSA) over ``payload`` as JSON, header ``kid``."""
        return jwt.encode(payload, self._private, algorithm="EdDSA", headers={"kid": self.kid})


def load_receipt_signer(path: str) -> ReceiptSigner:
    """The key in ``path`` (a private JWK), made and written there (mode 600) when missing; with
    no path at all (some tests), a key that lives as long as the process."""
    if not path:
        return ReceiptSigner.generate()
    file = Path(path)
    if file.exists():
        return ReceiptSigner.from_private_jwk(json.loads(file.read_text()))
    signer = ReceiptSigner.generate()
    file.parent.mkdir(parents=True, exist_ok=True)
    temporary = file.with_suffix(file.suffix + ".tmp")
    temporary.write_text(json.dumps(signer.private_jwk()))
    temporary.chmod(0o600)
    temporary.replace(file)  # a replica starting at the same moment never reads half a key
    return signer
