"""The NATS JetStream connection a service keeps, and the streams it publishes into."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from kit.tasks import cancel_task

log = logging.getLogger("yiwang.bus")

DEAD_LETTER_STREAM = "DEADLETTER"
DEAD_LETTER_SUBJECTS = ["deadletter.>"]
# JetStream drops a second publish with the same Nats-Msg-Id inside this window. The relay
# retries within seconds, so five minutes covers a lost ack; the inbox covers everything else.
DUPLICATE_WINDOW_SECONDS = 300


class NotConnected(RuntimeError):
    """NATS is away; callers keep their work (the outbox) and try again later."""


def server_list(url: str) -> list[str]:
    """The servers in ``url``: one ``nats://`` URL or a cluster's, comma-separated (blanks ignored)."""
    return [server.strip() for server in url.split(",") if server.strip()]


def stream_name_for(service: str) -> str:
    return service.upper()


class Bus:
    """Connects in the background and keeps reconnecting forever; never blocks start-up."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        streams: dict[str, list[str]] | None = None,
        dead_letters: bool = True,
        stream_replicas: int = 1,
    ) -> None:
        """``url``: one server or a comma-separated list of a cluster's servers (any may be down).
        ``streams``: the streams this process publishes into (declared on connect); the
        dead-letter stream too unless ``dead_letters`` is False (a process that only reads).
        ``stream_replicas``: JetStream replicas of those streams (3 on a 3-node cluster); a stream
        found with fewer is raised to this many."""
        self.url = url
        self.servers = server_list(url)
        self.name = name
        self.streams = streams or {}
        self.dead_letters = dead_letters
        self.stream_replicas = stream_replicas
        self._reconnect_listeners: list[Callable[[], None]] = []
        self.nc: Client | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._streams_ready = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._connect_loop(), name=f"bus-connect-{self.name}")

    async def _connect_loop(self) -> None:
        delay = 0.2
        while True:
            try:
                self.nc = await nats.connect(
                    self.servers,
                    name=self.name,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    drain_timeout=2,
                    disconnected_cb=self._on_disconnect,
                    reconnected_cb=self._on_reconnect,
                )
                self._connected.set()
                await self._ensure_streams()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("nats connect to %s failed (%s); retrying in %.1fs", self.url, type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _on_disconnect(self) -> None:
        log.warning("nats disconnected")

    async def _on_reconnect(self) -> None:
        log.info("nats reconnected")
        self._streams_ready = False
        for listener in self._reconnect_listeners:
            listener()

    def add_reconnect_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every reconnect (ephemeral consumers may be gone then)."""
        self._reconnect_listeners.append(listener)

    def _client(self) -> Client:
        if self.nc is None:
            raise NotConnected(self.url)
        return self.nc

    async def _ensure_streams(self) -> None:
        js = self._client().jetstream()
        wanted = dict(self.streams)
        if self.dead_letters:
            wanted[DEAD_LETTER_STREAM] = DEAD_LETTER_SUBJECTS
        for name, subjects in wanted.items():
            config = StreamConfig(
                name=name,
                subjects=subjects,
                storage=StorageType.FILE,
                retention=RetentionPolicy.LIMITS,
                discard=DiscardPolicy.OLD,
                duplicate_window=DUPLICATE_WINDOW_SECONDS,
                num_replicas=self.stream_replicas,
            )
            try:
                info = await js.stream_info(name)
            except NotFoundError:
                await js.add_stream(config)
                continue
            if (info.config.num_replicas or 1) < self.stream_replicas:
                await js.update_stream(replace(info.config, num_replicas=self.stream_replicas))
        self._streams_ready = True

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def jetstream(self) -> JetStreamContext:
        """The JetStream context, with this service's streams declared; NotConnected if NATS is away."""
        if not self.connected:
            raise NotConnected(self.url)
        if not self._streams_ready:
            await self._ensure_streams()
        return self._client().jetstream()

    async def check(self) -> None:
        """Readiness: a round trip to the server."""
        if not self.connected:
            raise NotConnected(self.url)
        await self._client().flush(timeout=1)

    async def close(self) -> None:
        await cancel_task(self._task)
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.drain(), 5)
            except Exception:  # a drain that fails or takes too long: just close
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.nc.close(), 5)
