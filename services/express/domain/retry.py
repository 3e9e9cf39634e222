"""When to ask the carrier again after it was away — pure (the random draw is passed in)."""

from __future__ import annotations


def backoff_seconds(attempts: int, *, base: float, cap: float, jitter: float = 1.0) -> float:
    """Seconds to wait after ``attempts`` failed tries: ``base × 2^(attempts−1)``, at most ``cap``,
    times ``jitter`` (a draw in 0.8–1.2, so replicas that failed together do not retry together)."""
    if attempts < 1:
        raise ValueError("attempts counts from 1")
    exponent = min(attempts - 1, 62)  # 2**62 × base is past any cap; no float overflow
    return min(base * 2.0**exponent, cap) * jitter
