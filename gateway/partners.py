"""Where the gateway's signed partners come from: the static ones in GATEWAY_PARTNERS (EMS) and
the department systems exchange keeps (ADR 0019), read from exchange's internal
``GET /partners/keys`` — signed with the gateway's service key (kit.signing, key id ``gateway``).

The department partners are read at start, every ``refresh_seconds``, and at once when
``exchange.partner.changed`` is seen on NATS (a core subscription on the subject exchange's stream
captures: every gateway replica hears every change; a change missed while NATS was away is caught
by the reload after a reconnect and by the periodic one). While exchange cannot be reached the
gateway keeps what it last read and always serves the static partners; exchange checks every push
again itself, so a partner revoked meanwhile is still refused there.

A static partner wins over a department partner of the same id: the operator's configuration is
not overridden by data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from gateway.signing import PartnerKeys
from kit.bus import Bus
from kit.signing import new_nonce, signed_headers

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


class PartnerDirectory:
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
        self.static = dict(static)
        self.dynamic: dict[str, PartnerKeys] = {}
        self.partners: dict[str, PartnerKeys] = dict(self.static)
        self.url = source_url.rstrip("/") + KEYS_PATH if source_url else ""
        self.path = urlsplit(self.url).path
        self.key_id = key_id
        self._secret = secret
        self.refresh_seconds = refresh_seconds
        self.timeout = timeout
        self.loaded_at: float | None = None
        self.reloads = 0
        self.failures = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._subscription: Any = None
        self._session: aiohttp.ClientSession | None = None
        self._bus: Bus | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.url and self._secret)

    def _merge(self, dynamic: dict[str, PartnerKeys]) -> None:
        shadowed = sorted(set(dynamic) & set(self.static))
        if shadowed:
            log.warning("department partners %s shadowed by static partners of the same id", shadowed)
        self.dynamic = dynamic
        self.partners = {**dynamic, **self.static}

    async def reload(self) -> bool:
        """Read exchange's keys once; false (and the last ones kept) when that fails."""
        if not self.enabled or self._session is None:
            return False
        headers = signed_headers(self.key_id, self._secret, "GET", self.path, b"", nonce=new_nonce(),
                                 timestamp=int(time.time()))  # fmt: skip
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with self._session.get(self.url, headers=headers, timeout=timeout) as response:
                if response.status != 200:
                    raise RuntimeError(f"exchange answered {response.status}")
                dynamic = parse_partner_keys(await response.json(content_type=None))
        except Exception as exc:
            self.failures += 1
            log.warning("department partners not reloaded (%s); keeping %d", type(exc).__name__, len(self.dynamic))
            return False
        self._merge(dynamic)
        self.loaded_at = time.time()
        self.reloads += 1
        return True

    def wake(self) -> None:
        """Reload now (a partner changed, or NATS came back and changes may have been missed)."""
        self._wake.set()

    async def start(self, session: aiohttp.ClientSession, bus: Bus | None) -> None:
        self._session = session
        self._bus = bus
        if not self.enabled:
            return
        if bus is not None:
            bus.add_reconnect_listener(self.wake)
        await self.reload()
        self._task = asyncio.create_task(self._run(), name="gateway-partner-directory")

    async def _run(self) -> None:
        while True:
            if self._subscription is None and self._bus is not None and self._bus.connected:
                await self._subscribe()
            with contextlib.suppress(TimeoutError):
                # Until subscribed, look again for NATS every second; then wait for a change or the period.
                wait = self.refresh_seconds if self._subscription is not None or self._bus is None else 1.0
                await asyncio.wait_for(self._wake.wait(), wait)
            woken = self._wake.is_set()
            self._wake.clear()
            if woken or time.time() - (self.loaded_at or 0) >= self.refresh_seconds:
                await self.reload()

    async def _subscribe(self) -> None:
        assert self._bus is not None and self._bus.nc is not None

        async def changed(_message: Any) -> None:
            self.wake()

        try:
            # Core NATS sees what JetStream stores under the subject; nats-py resubscribes after a
            # reconnect by itself.
            self._subscription = await self._bus.nc.subscribe(PARTNER_CHANGED_SUBJECT, cb=changed)
        except Exception as exc:
            log.warning("cannot follow %s (%s); reloading every %.0f s", PARTNER_CHANGED_SUBJECT,
                        type(exc).__name__, self.refresh_seconds)  # fmt: skip
            return
        self.wake()  # a change may have come between the first reload and the subscription

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None
