"""Secrets at rest (ADR 0019): partner HMAC secrets are stored AES-GCM encrypted, because the
platform must recompute their HMACs (a hash would not do), under one 32-byte key given as base64 in
EXCHANGE_SECRETS_KEY. Each ciphertext is bound to its row (the associated data names it), so a
ciphertext copied onto another row does not open.

Stored form: ``v1.<urlsafe base64 of 12-byte nonce ‖ ciphertext+tag>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger("yiwang.exchange")

_VERSION = "v1."
# A sandbox (make run, tests) without EXCHANGE_SECRETS_KEY uses this fixed, public key: anything it
# encrypts is as good as plain text. A deployment (sandbox off) refuses to start without a key.
_SANDBOX_KEY = hashlib.sha256(b"yiwang exchange sandbox secrets key - not a secret").digest()


class SecretsKeyMissing(RuntimeError):
    """EXCHANGE_SECRETS_KEY is not set (or not 32 bytes of base64) outside a sandbox."""


class SecretBox:
    """Seals and opens short secrets with AES-256-GCM."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SecretsKeyMissing("EXCHANGE_SECRETS_KEY must be 32 bytes (base64)")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, value: str, *, sandbox: bool) -> SecretBox:
        """The box for EXCHANGE_SECRETS_KEY (base64 of 32 bytes); in a sandbox without one, the
        fixed development key (said in the log); otherwise ``SecretsKeyMissing``."""
        if not value.strip():
            if not sandbox:
                raise SecretsKeyMissing("EXCHANGE_SECRETS_KEY is not set: partner secrets cannot be stored")
            log.warning(
                "EXCHANGE_SECRETS_KEY not set: using the sandbox's fixed development key (never in a deployment)"
            )
            return cls(_SANDBOX_KEY)
        text = value.strip()
        padded = (text + "=" * (-len(text) % 4)).replace("-", "+").replace("_", "/")  # either alphabet
        try:
            key = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SecretsKeyMissing("EXCHANGE_SECRETS_KEY is not base64") from exc
        return cls(key)

    def seal(self, plaintext: str, *, context: str) -> str:
        """Encrypt ``plaintext``; ``context`` names the row it belongs to (e.g. ``partner_key:pk_…``)."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str, *, context: str) -> str:
        """Decrypt what ``seal`` returned for the same ``context``; ValueError when it does not open."""
        if not stored.startswith(_VERSION):
            raise ValueError("unknown secret format")
        try:
            raw = base64.urlsafe_b64decode(stored[len(_VERSION) :])
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise ValueError("secret does not open under this key") from exc
