"""SMS gateway: a sandbox that keeps the messages (and can be told to fail or to be slow), and an
HTTP client for the real gateway. Messages are sent after commit by sms_dispatch.py, from the
``outgoing_sms`` table, with retries: a failure here loses nothing."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime
from typing import Protocol

import httpx


class SmsUnavailable(Exception):
    """The gateway did not take the message; it is tried again later."""


class SmsSender(Protocol):
    async def send(self, mobile: str, text: str) -> None: ...


class SandboxSms:
    """Keeps the last messages in memory for GET /sandbox/sms. ``fail_next`` refuses that many
    sends; ``delay_seconds`` makes every send slow."""

    def __init__(self, *, keep: int = 1000) -> None:
        self.messages: deque[dict[str, str]] = deque(maxlen=keep)
        self.fail_next = 0
        self.delay_seconds = 0.0

    async def send(self, mobile: str, text: str) -> None:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.fail_next > 0:
            self.fail_next -= 1
            raise SmsUnavailable("sandbox gateway refused the message")
        self.messages.append({"mobile": mobile, "text": text, "sent_at": datetime.now(UTC).isoformat()})

    def sent_to(self, mobile: str) -> list[dict[str, str]]:
        """Newest first."""
        return [m for m in reversed(self.messages) if m["mobile"] == mobile]


class HttpSms:
    """A JSON-over-HTTPS SMS gateway: POST {mobile, text} with an API key header."""

    def __init__(self, url: str, api_key: str, timeout: float) -> None:
        self.url = url
        self.api_key = api_key
        self.timeout = timeout

    async def send(self, mobile: str, text: str) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.url, json={"mobile": mobile, "text": text},
                                             headers={"X-Api-Key": self.api_key})  # fmt: skip
        except httpx.HTTPError as exc:
            raise SmsUnavailable(type(exc).__name__) from exc
        if response.status_code >= 300:
            raise SmsUnavailable(f"gateway answered {response.status_code}")
