"""Refusing revoked access tokens before their own expiry, without a network call per request.

identity publishes ``identity.tokens.revoked`` (contracts.events.identity.TokensRevoked) on its
stream IDENTITY. Every process that verifies tokens — each replica of each service and of the
gateway — follows that stream for itself (an ephemeral consumer, not a shared durable one: every
replica must see every revocation) and keeps the entries in a ``RevocationList`` in memory until
their ``until``. A token is refused when an entry matches it (by ``sid``; or by ``sub``, and
``act.sub`` when the entry names an actor) and it was issued at or before the entry's
``issued_before``. A token a counter officer made for a person (``hlp``, ADR 0002's issue-14
amendment) also matches the officer's entries: a session entry by ``hlp.sid``, a subject entry by
``hlp.sub`` — the officer's logout or disabling ends the tokens they made.

On start and after every reconnect the feed reads the stream back from now minus the longest
access-token lifetime, so a restarted process rebuilds its list; re-reading is harmless (entries
merge). While NATS cannot be reached the list keeps what it has and the process keeps serving
(fail open, docs/adr/0010-revocation-and-gateway.md): a gauge and a loud log say so, and what was
revoked meanwhile is read as soon as NATS is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from pydantic import ValidationError

from contracts.events.identity import TokensRevoked
from kit.bus import Bus, NotConnected
from kit.events import CloudEvent
from kit.tasks import BackgroundLoop

log = logging.getLogger("yiwang.revocation")

REVOCATION_STREAM = "IDENTITY"
REVOCATION_SUBJECT = TokensRevoked.nats_subject
# Clocks of identity, NATS and this process differ a little; read back this much more.
CLOCK_SKEW_SECONDS = 60


@dataclass
class _Entry:
    issued_before: float
    until: float
    reason: str


class RevocationList:
    """Revocation entries in memory, each kept until its ``until``; the check is two or three
    dictionary look-ups (none while the list is empty)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._sessions: dict[str, _Entry] = {}
        self._subjects: dict[tuple[str, str | None], _Entry] = {}
        self.refusals = 0
        self.added = 0

    def __len__(self) -> int:
        return len(self._sessions) + len(self._subjects)

    def add(
        self,
        *,
        issued_before: float,
        until: float,
        reason: str,
        session_id: str | None = None,
        subject: str | None = None,
        actor: str | None = None,
    ) -> None:
        """Remember one revocation (as TokensRevoked describes it); repeated ones merge."""
        now = self.clock()
        if until <= now:
            return  # every token it could match has expired already
        if session_id:
            table: dict[Any, _Entry] = self._sessions
            key: Any = session_id
        elif subject:
            table = self._subjects
            key = (subject, actor or None)
        else:
            return
        entry = table.get(key)
        if entry is None:
            table[key] = _Entry(issued_before, until, reason)
        else:  # the union of both: the later cut-off, kept as long as the longer one
            if issued_before >= entry.issued_before:
                entry.reason = reason
            entry.issued_before = max(entry.issued_before, issued_before)
            entry.until = max(entry.until, until)
        self.added += 1
        if self.added % 256 == 0:
            self.prune(now)

    def add_event(self, data: TokensRevoked) -> None:
        self.add(
            issued_before=data.issued_before.timestamp(),
            until=data.until.timestamp(),
            reason=data.reason,
            session_id=data.session_id,
            subject=data.subject,
            actor=data.actor,
        )

    def prune(self, now: float | None = None) -> None:
        """Forget entries past their ``until``."""
        now = self.clock() if now is None else now
        for key in [k for k, e in self._sessions.items() if e.until <= now]:
            del self._sessions[key]
        for subject_key in [k for k, e in self._subjects.items() if e.until <= now]:
            del self._subjects[subject_key]

    def _match(self, table: dict[Any, _Entry], key: Any, issued_at: float) -> str | None:
        entry = table.get(key)
        if entry is None:
            return None
        if entry.until <= self.clock():
            table.pop(key, None)
            return None
        return entry.reason if issued_at <= entry.issued_before else None

    def refusal(
        self,
        *,
        subject: str | None,
        session_id: str | None,
        actor: str | None,
        issued_at: float | None,
        helper: str | None = None,
        helper_session: str | None = None,
    ) -> str | None:
        """Why a token with these claims is revoked (the entry's reason), or None. ``helper`` and
        ``helper_session`` are a counter token's ``hlp.sub`` and ``hlp.sid``."""
        if not self._sessions and not self._subjects:
            return None
        # A token without iat cannot show it came after the revocation: it matches.
        iat = float("-inf") if issued_at is None else issued_at
        reason = None
        if self._sessions:
            for sid in (session_id, helper_session):
                if reason is None and sid:
                    reason = self._match(self._sessions, sid, iat)
        if reason is None and subject and self._subjects:
            reason = self._match(self._subjects, (subject, None), iat)
            if reason is None and actor:
                reason = self._match(self._subjects, (subject, actor), iat)
        if reason is None and helper and self._subjects:
            reason = self._match(self._subjects, (helper, None), iat)
        if reason is not None:
            self.refusals += 1
        return reason

    def refusal_for_claims(self, claims: Mapping[str, Any]) -> str | None:
        """``refusal`` for a verified token's claims."""
        act = claims.get("act")
        iat = claims.get("iat")
        helper, helper_session = helper_of(claims)
        return self.refusal(
            subject=claims.get("sub"),
            session_id=claims.get("sid"),
            actor=act.get("sub") if isinstance(act, dict) else None,
            issued_at=float(iat) if isinstance(iat, int | float) else None,
            helper=helper,
            helper_session=helper_session,
        )


def helper_of(claims: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """A counter token's helping officer and that officer's login session: ``hlp.sub``, ``hlp.sid``."""
    hlp = claims.get("hlp")
    if not isinstance(hlp, dict):
        return None, None
    sub, sid = hlp.get("sub"), hlp.get("sid")
    return (str(sub) if sub else None), (str(sid) if sid else None)


class RevocationFeed(BackgroundLoop):
    """Follows identity.tokens.revoked for this process and fills a RevocationList."""

    task_name = "revocation-feed"

    def __init__(
        self,
        bus: Bus,
        revocations: RevocationList,
        *,
        replay_seconds: float = 600,
        stream: str = REVOCATION_STREAM,
        subject: str = REVOCATION_SUBJECT,
        fetch_timeout: float = 1.0,
        check_every: int = 5,
        loud_log_every: float = 30.0,
    ) -> None:
        self.bus = bus
        self.revocations = revocations
        self.replay_seconds = replay_seconds
        self.stream = stream
        self.subject = subject
        self.fetch_timeout = fetch_timeout
        self.check_every = check_every
        self.loud_log_every = loud_log_every
        self.synced = False  # read the recent revocations at least once (or there is no stream yet)
        self.up = False  # following the stream right now
        self.received = 0
        self.invalid = 0
        self.down_since: float | None = time.monotonic()
        self._last_loud_log = float("-inf")
        self._resubscribe = False
        bus.add_reconnect_listener(self._on_reconnect)

    def _on_reconnect(self) -> None:
        # The server may have lost our ephemeral consumer: read back again from the start time.
        self._resubscribe = True

    def apply(self, payload: bytes) -> None:
        """One message from the stream: remember the revocation it carries."""
        try:
            event = CloudEvent.model_validate_json(payload)
            if event.type != TokensRevoked.event_type:
                return
            self.revocations.add_event(TokensRevoked.model_validate(event.data))
            self.received += 1
        except ValidationError as exc:
            self.invalid += 1
            log.warning("revocation feed: not a TokensRevoked event (%d errors); skipped", exc.error_count())

    def _mark_up(self) -> None:
        if not self.up and self.down_since is not None and self.synced:
            log.warning("revocation feed: following %s again", self.subject)
        self.up = True
        self.synced = True
        self.down_since = None

    def _mark_down(self, why: str) -> None:
        now = time.monotonic()
        if self.up or self.down_since is None:
            self.down_since = now
        self.up = False
        # A moment's grace (start-up's first connect, a quick reconnect); then loudly, repeatedly.
        if now - (self.down_since or now) >= 2.0 and now - self._last_loud_log >= self.loud_log_every:
            self._last_loud_log = now
            log.error(
                "revocation feed DOWN for %.0f s (%s): tokens revoked meanwhile are still accepted "
                "until it is back (fail open, ADR 0010)",
                now - (self.down_since or now),
                why,
            )

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._follow()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except NotFoundError:
                # identity has not created its stream yet: nothing was revoked; look again soon.
                self.synced = True
                self.up = False
                await asyncio.sleep(1.0)
            except Exception as exc:
                self._mark_down(type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _follow(self) -> None:
        js = await self.bus.jetstream()
        await js.stream_info(self.stream)  # NotFoundError while the stream does not exist
        self._resubscribe = False
        start = datetime.now(UTC) - timedelta(seconds=self.replay_seconds + CLOCK_SKEW_SECONDS)
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=start,
            ack_policy=AckPolicy.NONE,
            filter_subject=self.subject,
            inactive_threshold=60.0,  # the server forgets it soon after this process is gone
            mem_storage=True,
            num_replicas=1,
        )
        subscription = await js.pull_subscribe(self.subject, durable=None, stream=self.stream, config=config)
        try:
            idle = 0
            while not self._resubscribe:
                try:
                    messages = await subscription.fetch(100, timeout=self.fetch_timeout)
                except (TimeoutError, nats.errors.TimeoutError):
                    if not self.bus.connected:  # a fetch while reconnecting only times out
                        raise NotConnected(self.bus.url) from None
                    self._mark_up()  # nothing pending: caught up
                    idle += 1
                    if idle >= self.check_every:
                        idle = 0
                        await subscription.consumer_info()  # NotFoundError if the server lost it
                    continue
                idle = 0
                for message in messages:
                    self.apply(message.data)
                last = messages[-1].metadata if messages else None
                if last is not None and last.num_pending == 0:
                    self._mark_up()
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()


class RevocationCollector(Collector):
    """Prometheus view of a process's revocation list and feed."""

    def __init__(self, revocations: RevocationList, feed: Callable[[], RevocationFeed | None]) -> None:
        self.revocations = revocations
        self.feed = feed

    def collect(self) -> Iterable[Any]:
        feed = self.feed()
        yield GaugeMetricFamily(
            "token_revocation_feed_up",
            "1 while this process follows identity.tokens.revoked (0: revoked tokens may pass, fail open)",
            value=1 if feed is not None and feed.up else 0,
        )
        yield GaugeMetricFamily("token_revocation_entries", "Revocation entries held", value=len(self.revocations))
        yield CounterMetricFamily(
            "token_revocation_refusals", "Requests refused for a revoked token", value=self.revocations.refusals
        )
        yield CounterMetricFamily(
            "token_revocations_received", "Revocations read from the stream", value=feed.received if feed else 0
        )


def register_revocation_metrics(
    registry: CollectorRegistry, revocations: RevocationList, feed: Callable[[], RevocationFeed | None]
) -> None:
    registry.register(RevocationCollector(revocations, feed))
