"""The hall's self-service kiosks the gateway checks signatures against (ADR 0025), read from
identity's internal ``GET /kiosks/keys`` (signed with the gateway's service key, key id
``gateway``) at start, every ``kiosk_refresh_seconds`` and at once on ``identity.kiosk.changed``
(gateway/keysource.py, shared with exchange's department partners). A revoked kiosk is gone from
the next load, so its signatures — and with them the kiosk tokens made there — are refused within
a second of the event. While identity cannot be reached the last kiosks are kept; identity checks
a kiosk's card read again itself.

A kiosk signs as a partner does (ADR 0003, kit.signing): its device id as ``X-Partner-Id``.
"""

from __future__ import annotations

from typing import Any

from gateway.keysource import KeyDirectory

KIOSK_CHANGED_SUBJECT = "identity.kiosk.changed"  # contracts.events.identity.KioskChanged
KEYS_PATH = "/kiosks/keys"


def parse_kiosk_keys(document: Any) -> dict[str, tuple[bytes, ...]]:
    """Identity's answer ``{device_id: {secrets: [...], hall_code}}`` as device id → secrets;
    entries that are not well formed are left out."""
    if not isinstance(document, dict):
        raise ValueError("kiosk keys: not a JSON object")
    kiosks: dict[str, tuple[bytes, ...]] = {}
    for device_id, entry in document.items():
        secrets = entry.get("secrets") if isinstance(entry, dict) else None
        if isinstance(secrets, list) and secrets and all(isinstance(s, str) and s for s in secrets):
            kiosks[str(device_id)] = tuple(s.encode() for s in secrets)
    return kiosks


class KioskDirectory(KeyDirectory[tuple[bytes, ...]]):
    """``kiosks``: device id → its secrets, replaced whole on each load."""

    def __init__(self, *, source_url: str = "", key_id: str = "gateway", secret: str = "",
                 refresh_seconds: float = 30.0, timeout: float = 3.0) -> None:  # fmt: skip
        super().__init__(
            what="kiosks", source_url=source_url, keys_path=KEYS_PATH, changed_subject=KIOSK_CHANGED_SUBJECT,
            parse=parse_kiosk_keys, key_id=key_id, secret=secret, refresh_seconds=refresh_seconds, timeout=timeout,
        )  # fmt: skip

    @property
    def kiosks(self) -> dict[str, tuple[bytes, ...]]:
        return self.dynamic
