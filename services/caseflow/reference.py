"""Reference data caseflow reads on every request, kept in memory for a few seconds.

Published matter versions never change and the working-day calendar changes once or twice a
year, yet reading them cost three of a submission's round trips. Each database (engine) has its
own cache, so two apps on two databases in one process (the tests) never share entries. A write
made through this process forgets the entries at once; another replica's write is seen within
``TTL_SECONDS`` (docs/adr/0008-caseflow-hot-path.md).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from kit.driver import Driver

TTL_SECONDS = 5.0
T = TypeVar("T")


def clock() -> float:
    """Seconds on a monotonic clock (a function of its own, so a test can move it)."""
    return time.monotonic()


class Expiring:
    """A small key → value map whose entries are forgotten ``ttl`` seconds after they were put."""

    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < clock():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        if len(self._entries) > 10_000:  # a bound, not an eviction policy: entries live seconds
            self._entries.clear()
        self._entries[key] = (clock() + self.ttl, value)

    def clear(self) -> None:
        self._entries.clear()


_caches: weakref.WeakKeyDictionary[Engine, dict[str, Expiring]] = weakref.WeakKeyDictionary()


def cache_for(session: AsyncSession, name: str) -> Expiring:
    """The named cache of the database this session talks to (see ``changed_in``)."""
    return _cache_of(session.get_bind(), name)


_last: tuple[weakref.ref[Engine], dict[str, Expiring]] | None = None  # the engine asked for last, and its caches


def _cache_of(engine: Engine, name: str) -> Expiring:
    global _last
    if _last is not None and _last[0]() is engine:
        named = _last[1]  # a hot path asks several times a request: no weak reference made each time
    else:
        named = _caches.setdefault(engine, {})
        _last = (weakref.ref(engine), named)
    cache = named.get(name)
    if cache is None:
        cache = named[name] = Expiring()
    return cache


def changed_in(session: AsyncSession, name: str) -> bool:
    """Whether this session wrote what the named cache holds (it then reads its own writes)."""
    return name in session.info.get("reference_changed", ())


def forget_on_commit(session: AsyncSession, name: str) -> None:
    """This session changes what the named cache holds: until it commits, its own reads bypass
    the cache; at commit (and now) the cache forgets everything it holds."""
    changed: set[str] = session.info.setdefault("reference_changed", set())
    cache = cache_for(session, name)
    cache.clear()
    if name in changed:
        return
    changed.add(name)

    def after_commit(_sync_session: Any) -> None:
        cache.clear()
        changed.discard(name)

    event.listen(session.sync_session, "after_commit", after_commit, once=True)


async def cached(session: AsyncSession, name: str, key: Hashable, load: Callable[[], Awaitable[T | None]]) -> T | None:
    """The named cache's value for ``key``, or what ``load()`` reads (kept unless None: a missing
    thing may appear a moment from now). A session that changed what the cache holds reads its
    own writes and caches nothing."""
    if changed_in(session, name):
        return await load()
    return await _through(cache_for(session, name), key, load)


async def _through(cache: Expiring, key: Hashable, load: Callable[[], Awaitable[T | None]]) -> T | None:
    value = cache.get(key)
    if value is None:
        value = await load()
        if value is not None:
            cache.put(key, value)
    return value


async def cached_on(db: Driver, name: str, key: Hashable, load: Callable[[], Awaitable[T | None]]) -> T | None:
    """``cached`` for a hot path on the driver (kit.driver): the same cache as the sessions on its
    database. Such a path writes no reference data, so it never has its own writes to read."""
    return await _through(_cache_of(db.engine.sync_engine, name), key, load)
