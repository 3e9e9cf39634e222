"""Secrets at rest that the platform must use again (HMAC secrets it recomputes signatures with, so
a hash would not do): AES-256-GCM under one 32-byte key given as base64 in a service's
``<PREFIX>SECRETS_KEY`` (exchange's partner and webhook secrets, ADR 0019; identity's kiosk
secrets, ADR 0025). Each ciphertext is bound to its row (the associated data names it), so a
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

log = logging.getLogger("yiwang.secretbox")

_VERSION = "v1."


def sandbox_key(service: str) -> bytes:
    """The fixed, public key a sandbox (make run, tests) of ``service`` uses without a configured
    one: anything it encrypts is as good as plain text."""
    return hashlib.sha256(f"yiwang {service} sandbox secrets key - not a secret".encode()).digest()


class SecretsKeyMissing(RuntimeError):
    """The secrets key is not set (or not 32 bytes of base64) outside a sandbox."""


class SecretBox:
    """Seals and opens short secrets with AES-256-GCM."""

    def __init__(self, key: bytes, *, setting: str = "SECRETS_KEY") -> None:
        if len(key) != 32:
            raise SecretsKeyMissing(f"{setting} must be 32 bytes (base64)")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, value: str, *, sandbox: bool, setting: str, service: str) -> SecretBox:
        """The box for the setting's value (base64 of 32 bytes, either alphabet); in a sandbox
        without one, ``sandbox_key(service)`` (said in the log); otherwise ``SecretsKeyMissing``."""
        if not value.strip():
            if not sandbox:
                raise SecretsKeyMissing(f"{setting} is not set: secrets cannot be stored")
            log.warning("%s not set: using the sandbox's fixed development key (never in a deployment)", setting)
            return cls(sandbox_key(service), setting=setting)
        text = value.strip()
        padded = (text + "=" * (-len(text) % 4)).replace("-", "+").replace("_", "/")  # either alphabet
        try:
            key = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SecretsKeyMissing(f"{setting} is not base64") from exc
        return cls(key, setting=setting)

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
