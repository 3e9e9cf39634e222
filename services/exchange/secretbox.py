"""Secrets at rest (ADR 0019): partner and webhook HMAC secrets are stored AES-GCM encrypted under
EXCHANGE_SECRETS_KEY — kit.secretbox's box, with exchange's setting name and sandbox key. Stored
ciphertexts made before the box moved to the kit open unchanged (same format, same sandbox key)."""

from __future__ import annotations

from kit.secretbox import SecretBox as _KitSecretBox
from kit.secretbox import SecretsKeyMissing

__all__ = ["SecretBox", "SecretsKeyMissing"]


class SecretBox(_KitSecretBox):
    @classmethod
    def from_setting(
        cls, value: str, *, sandbox: bool, setting: str = "EXCHANGE_SECRETS_KEY", service: str = "exchange"
    ) -> SecretBox:
        box = super().from_setting(value, sandbox=sandbox, setting=setting, service=service)
        assert isinstance(box, SecretBox)
        return box
