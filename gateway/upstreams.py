"""An area's service as the gateway sees it: one or more replicas behind the same path prefix.

Requests take the replicas in turn (round robin). A replica that cannot be connected to is skipped
for ``cooldown_seconds`` so the requests after it do not each pay for the refusal; it is tried
again after that, or sooner as the last resort when every other replica failed too (ADR 0032).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.client import Origin


def replica_urls(value: str | list[str]) -> list[str]:
    """An ``upstreams`` setting's entry as a list of replica URLs (a string is one replica)."""
    return [value] if isinstance(value, str) else list(value)


def url_prefix(url: str) -> str:
    """The path an upstream URL carries: prepended to what follows /api/v1/<area>."""
    return urlsplit(url).path.rstrip("/")


class Replica:
    """One running copy of a service; ``down_until`` (monotonic seconds) is 0 while it is not cooling."""

    __slots__ = ("url", "origin", "endpoint", "down_until")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url.rstrip("/")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.endpoint = Origin(url)  # host, port and path prefix for the gateway's client
        self.down_until = 0.0

    def cooling(self, now: float) -> bool:
        """True while the replica is skipped after a failed connection."""
        return self.down_until > now


class Upstream:
    """One area's service: each replica's URL is prepended to the path after /api/v1/<area>."""

    __slots__ = ("area", "replicas", "origins", "prefix", "cooldown_seconds", "_turn")

    def __init__(self, area: str, urls: str | list[str], *, cooldown_seconds: float = 2.0) -> None:
        self.area = area
        self.replicas = tuple(Replica(url) for url in replica_urls(urls))
        if not self.replicas:
            raise ValueError(f"upstreams[{area!r}]: at least one replica URL is required")
        self.origins = tuple(replica.origin for replica in self.replicas)
        self.prefix = url_prefix(self.replicas[0].url)
        self.cooldown_seconds = cooldown_seconds
        self._turn = 0

    def first_turn(self) -> int:
        """The index of the replica this request tries first; the next request starts one further."""
        turn = self._turn
        self._turn = turn + 1 if turn + 1 < len(self.replicas) else 0
        return turn
