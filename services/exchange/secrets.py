"""Secrets at rest (partner HMAC keys, webhook signing secrets): AES-256-GCM under
EXCHANGE_SECRETS_KEY. The platform must recompute HMACs, so it keeps the secrets themselves, never
in the clear: a stolen database without the key gives none of them.

``seal`` answers ``v1.<base64url(nonce ‖ ciphertext ‖ tag)>``; ``unseal`` reverses it and fails
loudly (``SecretUnreadable``) on a wrong key or a tampered value. ``aad`` binds a ciphertext to
its row (e.g. the subscription id), so a ciphertext copied onto another row does not open.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1."
_NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """A sealed secret that does not open with this key (wrong key, tampered, not ours)."""


def secrets_key(value: str) -> bytes:
    """EXCHANGE_SECRETS_KEY (base64 of 32 bytes) as the AES key; refuses anything else."""
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("EXCHANGE_SECRETS_KEY must be base64") from exc
    if len(key) != 32:
        raise ValueError("EXCHANGE_SECRETS_KEY must be 32 bytes (base64)")
    return key


def seal(plaintext: str, key: bytes, *, aad: str = "") -> str:
    """Encrypt ``plaintext`` under ``key`` (a fresh random nonce each time)."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), aad.encode() or None)
    return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(sealed: str, key: bytes, *, aad: str = "") -> str:
    """The plaintext ``seal`` was given; ``SecretUnreadable`` when it does not open."""
    if not sealed.startswith(_VERSION):
        raise SecretUnreadable("unknown format")
    try:
        raw = base64.urlsafe_b64decode(sealed[len(_VERSION) :])
        plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad.encode() or None)
    except (binascii.Error, ValueError, InvalidTag) as exc:
        raise SecretUnreadable("does not open with this key") from exc
    return plain.decode()
