"""Who signs licences and how a verifier checks them, with no I/O.

- A ``Signer`` has a key id (``kid``), an algorithm name (``alg``) and ``sign(bytes) -> bytes``.
  ``Ed25519Signer`` is the default (``cryptography``); an HSM or a remote signing service only has
  to offer the same three members.
- A ``KeySet`` is the published key set: a JWKS-shaped dict of public keys (RFC 8037 OKP/Ed25519
  JWKs, each with its ``kid``). It holds the current key AND every rotated-out key, so a licence
  signed years ago still verifies; a key is never reused under another kid. Rotation = add the
  new key, sign with it, keep the old one published.
- SM2 (GM/T 0003 with SM3) is what Chinese e-seals use. It has an algorithm name here so a key set
  may list SM2 keys, but this build has no SM2 implementation (``cryptography`` has none and no
  well-kept Python library was found), so signing or verifying with it raises UnsupportedAlgorithm.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.licence.domain.errors import BadSignature, InvalidKeySet, UnknownKey, UnsupportedAlgorithm

ALG_EDDSA = "EdDSA"  # JOSE/COSE name for Ed25519 signatures (RFC 8037, RFC 9053)
ALG_SM2 = "SM2"  # GM/T 0003 SM2 with SM3; named, not implemented
KNOWN_ALGORITHMS = frozenset({ALG_EDDSA, ALG_SM2})
_MAX_KEYS = 256  # a key set is published and cached by verifiers; a huge one is a mistake or an attack


class Signer(Protocol):
    """Signs licence payloads under one key."""

    @property
    def kid(self) -> str: ...

    @property
    def alg(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Ed25519Signer:
    """The default signer: an Ed25519 private key held in process."""

    alg = ALG_EDDSA

    def __init__(self, private_key: Ed25519PrivateKey, *, kid: str) -> None:
        if not kid or len(kid) > 32:
            raise InvalidKeySet("kid", "length", "a kid is 1-32 characters (it travels in every QR code)")
        self._key = private_key
        self.kid = kid

    @classmethod
    def generate(cls, *, kid: str) -> Ed25519Signer:
        """A new random key."""
        return cls(Ed25519PrivateKey.generate(), kid=kid)

    @classmethod
    def from_private_jwk(cls, jwk: Mapping[str, Any]) -> Ed25519Signer:
        """From a private OKP JWK (``d`` present), as kept in the service's secret settings."""
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("d"), str):
            raise InvalidKeySet("key", "kty", "a private signing key is an OKP Ed25519 JWK with d")
        try:
            raw = _unb64url(jwk["d"])
            key = Ed25519PrivateKey.from_private_bytes(raw)
        except (ValueError, binascii.Error) as exc:
            raise InvalidKeySet("key", "d", "d is not a base64url Ed25519 private key") from exc
        return cls(key, kid=str(jwk.get("kid", "")))

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data``."""
        return self._key.sign(data)

    def public_jwk(self) -> dict[str, str]:
        """The public JWK to publish in the key set."""
        raw = self._key.public_key().public_bytes_raw()
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw), "kid": self.kid, "alg": ALG_EDDSA, "use": "sig"}

    def private_jwk(self) -> dict[str, str]:
        """The private JWK (for secret settings only; never log or publish it)."""
        return self.public_jwk() | {"d": _b64url(self._key.private_bytes_raw())}


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One published key: its kid, algorithm and (for algorithms this build implements) the key."""

    kid: str
    alg: str
    key: Ed25519PublicKey | None
    jwk: dict[str, Any]


def _read_jwk(jwk: Any, index: int) -> PublicKey:
    field = f"keys[{index}]"
    if not isinstance(jwk, Mapping):
        raise InvalidKeySet(field, "type", "each key is a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not 1 <= len(kid) <= 32:
        raise InvalidKeySet(f"{field}.kid", "required", "each key has a kid of 1-32 characters")
    if "d" in jwk:
        raise InvalidKeySet(f"{field}.d", "private", "a published key set holds public keys only")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "OKP" and crv == "Ed25519":
        alg = jwk.get("alg", ALG_EDDSA)
        if alg != ALG_EDDSA:
            raise InvalidKeySet(f"{field}.alg", "alg", "an Ed25519 key is used with EdDSA only")
        x = jwk.get("x")
        try:
            raw = _unb64url(x) if isinstance(x, str) else b""
            key = Ed25519PublicKey.from_public_bytes(raw)
        except (ValueError, binascii.Error) as exc:
            raise InvalidKeySet(f"{field}.x", "x", "x is not a base64url Ed25519 public key") from exc
        return PublicKey(kid, ALG_EDDSA, key, dict(jwk))
    if kty == "EC" and crv == "SM2":
        # Listed so a mixed key set loads; verifying with it raises UnsupportedAlgorithm.
        return PublicKey(kid, ALG_SM2, None, dict(jwk))
    raise InvalidKeySet(f"{field}.kty", "kty", "keys are OKP/Ed25519 (or EC/SM2, listed but not verifiable)")


class KeySet:
    """The verifier's set of trusted public keys, current and rotated-out, by kid."""

    def __init__(self, keys: Iterable[PublicKey]) -> None:
        self._keys: dict[str, PublicKey] = {}
        for key in keys:
            if key.kid in self._keys:
                raise InvalidKeySet("keys", "unique_kid", f"kid {key.kid!r} appears twice")
            self._keys[key.kid] = key

    @classmethod
    def from_jwks(cls, document: Any) -> KeySet:
        """Read a published JWKS ``{"keys": [...]}``; raises InvalidKeySet naming the bad member."""
        if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
            raise InvalidKeySet("keys", "required", 'a key set is {"keys": [...]}')
        keys = document["keys"]
        if not 1 <= len(keys) <= _MAX_KEYS:
            raise InvalidKeySet("keys", "length", f"a key set holds 1-{_MAX_KEYS} keys")
        return cls(_read_jwk(jwk, index) for index, jwk in enumerate(keys))

    def to_jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JWKS to publish (public members only)."""
        return {"keys": [key.jwk for key in self._keys.values()]}

    @property
    def kids(self) -> list[str]:
        return list(self._keys)

    def get(self, kid: str) -> PublicKey:
        """The key published under ``kid``; raises UnknownKey."""
        try:
            return self._keys[kid]
        except KeyError:
            raise UnknownKey("kid", "unknown_key", f"no published key has kid {kid!r}") from None

    def verify(self, *, kid: str, alg: str | None, data: bytes, signature: bytes) -> PublicKey:
        """Check ``signature`` over ``data`` with the key ``kid``; the key decides the algorithm and
        a differing ``alg`` claim is refused (no algorithm confusion). Returns the key used."""
        key = self.get(kid)
        if alg is not None and alg != key.alg:
            raise BadSignature("alg", "alg_mismatch", f"kid {kid!r} is a {key.alg} key, the payload claims {alg}")
        if key.key is None:
            raise UnsupportedAlgorithm("alg", "unsupported", f"{key.alg} signatures cannot be verified by this build")
        try:
            key.key.verify(signature, data)
        except InvalidSignature:
            raise BadSignature("signature", "bad_signature", "the signature does not match the content") from None
        return key


def key_set_document(current: Ed25519Signer, *, retired: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The JWKS to publish after a rotation: the current key first, every retired public key after it."""
    keys = [current.public_jwk(), *(dict(jwk) for jwk in retired)]
    KeySet.from_jwks({"keys": keys})  # refuses duplicates and private members before anything is published
    return {"keys": keys}
