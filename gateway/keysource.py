"""Keys the gateway reads from a service rather than from its settings: department partners from
exchange (gateway/partners.py, ADR 0019) and self-service kiosks from identity (gateway/kiosks.py,
ADR 0025). One way of loading both:

- a ``GET`` of the service's internal keys path, signed with the gateway's service key (kit.signing,
  key id ``gateway``), at start, every ``refresh_seconds``, and at once when the service's
  ``<service>.<thing>.changed`` event is seen on NATS (a core subscription on the subject the
  service's stream captures: every gateway replica hears every change; a change missed while NATS
  was away is caught by the reload after a reconnect and by the periodic one);
- the parsed document replaces the directory's entries whole (readers never see half a reload);
- while the service cannot be reached, the last entries are kept (the service checks again itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import aiohttp

from kit.bus import Bus
from kit.signing import new_nonce, signed_headers

log = logging.getLogger("yiwang.gateway.keys")

Entry = TypeVar("Entry")


class KeyDirectory(Generic[Entry]):
    """Entries (id → keys) loaded from one service; subclasses say what happens on a load."""

    def __init__(
        self,
        *,
        what: str,
        source_url: str,
        keys_path: str,
        changed_subject: str,
        parse: Callable[[Any], dict[str, Entry]],
        key_id: str = "gateway",
        secret: str = "",
        refresh_seconds: float = 30.0,
        timeout: float = 3.0,
    ) -> None:
        self.what = what
        self.dynamic: dict[str, Entry] = {}
        self.url = source_url.rstrip("/") + keys_path if source_url else ""
        self.path = urlsplit(self.url).path
        self.changed_subject = changed_subject
        self.parse = parse
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

    def _loaded(self, entries: dict[str, Entry]) -> None:
        """Take a freshly read document (replace whole)."""
        self.dynamic = entries

    async def reload(self) -> bool:
        """Read the service's keys once; false (and the last ones kept) when that fails."""
        if not self.enabled or self._session is None:
            return False
        headers = signed_headers(self.key_id, self._secret, "GET", self.path, b"", nonce=new_nonce(),
                                 timestamp=int(time.time()))  # fmt: skip
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with self._session.get(self.url, headers=headers, timeout=timeout) as response:
                if response.status != 200:
                    raise RuntimeError(f"answered {response.status}")
                entries = self.parse(await response.json(content_type=None))
        except Exception as exc:
            self.failures += 1
            log.warning("%s not reloaded (%s); keeping %d", self.what, type(exc).__name__, len(self.dynamic))
            return False
        self._loaded(entries)
        self.loaded_at = time.time()
        self.reloads += 1
        return True

    def wake(self) -> None:
        """Reload now (something changed, or NATS came back and changes may have been missed)."""
        self._wake.set()

    async def start(self, session: aiohttp.ClientSession, bus: Bus | None) -> None:
        self._session = session
        self._bus = bus
        if not self.enabled:
            return
        if bus is not None:
            bus.add_reconnect_listener(self.wake)
        await self.reload()
        self._task = asyncio.create_task(self._run(), name=f"gateway-{self.changed_subject}")

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
            self._subscription = await self._bus.nc.subscribe(self.changed_subject, cb=changed)
        except Exception as exc:
            log.warning("cannot follow %s (%s); reloading every %.0f s", self.changed_subject,
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
