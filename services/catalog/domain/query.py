"""One search over the catalog: the words and filters a citizen or a kiosk sends."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MatterQuery:
    """``depth`` is a minimum handling depth, ``max_visits`` a maximum number of visits; filters AND."""

    q: str | None = None
    department: str | None = None
    matter_type: str | None = None
    audience: str | None = None
    theme: str | None = None
    depth: int | None = None
    max_visits: int | None = None
    online: bool | None = None
    page: int = 1
    page_size: int = 20
