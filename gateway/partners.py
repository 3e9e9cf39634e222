"""Where the gateway's signed partners come from: the static ones in GATEWAY_PARTNERS (EMS) and
the department systems exchange keeps (ADR 0019), read from exchange's internal
``GET /partners/keys`` — signed with the gateway's service key (kit.signing, key id ``gateway``).

The department partners are read at start, every ``refresh_seconds``, and at once when
``exchange.partner.changed`` is seen on NATS (gateway/keysource.py, shared with the kiosks). While
exchange cannot be reached the gateway keeps what it last read and always serves the static
partners; exchange checks every push again itself, so a partner revoked meanwhile is still
refused there.

A static partner wins over a department partner of the same id: the operator's configuration is
not overridden by data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gateway.keysource import KeyDirectory
from gateway.signing import PartnerKeys

log = logging.getLogger("yiwang.gateway.partners")

PARTNER_CHANGED_SUBJECT = "exchange.partner.changed"  # contracts.events.exchange.PartnerChanged
KEYS_PATH = "/partners/keys"


def parse_partner_keys(document: Any) -> dict[str, PartnerKeys]:
    """Exchange's answer ``{partner: {secrets: [...], paths: [...]}}`` as PartnerKeys; entries
    that are not well formed are left out (never a partner allowed everywhere by accident)."""
    if not isinstance(document, dict):
        raise ValueError("partner keys: not a JSON object")
    partners: dict[str, PartnerKeys] = {}
    for partner_id, entry in document.items():
        if not isinstance(entry, dict):
            continue
        secrets, paths = entry.get("secrets"), entry.get("paths")
        if (
            isinstance(secrets, list) and secrets and all(isinstance(s, str) and s for s in secrets)
            and isinstance(paths, list) and paths and all(isinstance(p, str) and p.startswith("/") for p in paths)
        ):  # fmt: skip
            partners[str(partner_id)] = PartnerKeys.from_config(secrets, paths)
    return partners


class PartnerDirectory(KeyDirectory[PartnerKeys]):
    """The partners the gateway checks signatures against: ``partners`` is replaced whole on each
    reload (readers never see half a reload)."""

    def __init__(
        self,
        static: Mapping[str, PartnerKeys],
        *,
        source_url: str = "",
        key_id: str = "gateway",
        secret: str = "",
        refresh_seconds: float = 30.0,
        timeout: float = 3.0,
    ) -> None:
        super().__init__(
            what="department partners", source_url=source_url, keys_path=KEYS_PATH,
            changed_subject=PARTNER_CHANGED_SUBJECT, parse=parse_partner_keys, key_id=key_id, secret=secret,
            refresh_seconds=refresh_seconds, timeout=timeout,
        )  # fmt: skip
        self.static = dict(static)
        self.partners: dict[str, PartnerKeys] = dict(self.static)

    def _loaded(self, entries: dict[str, PartnerKeys]) -> None:
        self._merge(entries)

    def _merge(self, dynamic: dict[str, PartnerKeys]) -> None:
        shadowed = sorted(set(dynamic) & set(self.static))
        if shadowed:
            log.warning("department partners %s shadowed by static partners of the same id", shadowed)
        self.dynamic = dynamic
        self.partners = {**dynamic, **self.static}
