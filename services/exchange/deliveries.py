"""Queueing webhooks to departments' subscriptions (the outbound half fills this module in)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def enqueue(
    session: AsyncSession,
    *,
    department: str,
    type: str,
    source_id: str,
    ordering_key: str,
    data: dict[str, Any],
    at: datetime,
) -> int:
    """Queue one webhook of ``type`` (contracts.departments.WebhookType) to every active
    subscription of ``department`` that wants it, in the caller's transaction; ``source_id`` makes
    it once per subscription however often it is called; returns how many were queued."""
    return 0
