"""Token buckets per key (client IP, subject): pure arithmetic plus a bounded in-memory table."""

from __future__ import annotations

import math


def take(tokens: float, stamp: float, now: float, rate: float, burst: float) -> tuple[bool, float, float]:
    """One request against a bucket holding ``tokens`` at time ``stamp``.

    Returns ``(allowed, tokens_left, retry_after_seconds)``; the bucket refills ``rate`` tokens a
    second up to ``burst``. ``retry_after`` is 0 when allowed.
    """
    tokens = min(burst, tokens + (now - stamp) * rate) if now > stamp else tokens
    if tokens >= 1.0:
        return True, tokens - 1.0, 0.0
    return False, tokens, (1.0 - tokens) / rate


class RateLimiter:
    """Buckets for many keys; memory is bounded by ``max_keys`` (full buckets are dropped first)."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, list[float]] = {}

    def hit(self, key: str, now: float) -> float:
        """0.0 if the request may pass, else the whole seconds to wait (for Retry-After)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict(now)
            self._buckets[key] = [self.burst - 1.0, now]
            return 0.0
        allowed, tokens, retry_after = take(bucket[0], bucket[1], now, self.rate, self.burst)
        bucket[0] = tokens
        bucket[1] = now
        if allowed:
            return 0.0
        return float(max(1, math.ceil(retry_after)))

    def _evict(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: forgetting it changes nothing.
        refill = self.burst / self.rate
        full = [k for k, (_, stamp) in self._buckets.items() if now - stamp >= refill]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:  # a flood of distinct keys: drop the oldest half
            for key in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
