"""SMS gateway adapter: a sandbox that keeps every message, and an HTTP client for the real one."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from datetime import UTC, datetime
from typing import Protocol

import httpx


class SmsUnavailable(Exception):
    """The SMS gateway did not take the message; the caller may retry."""


class SmsSender(Protocol):
    async def send(self, mobile: str, text: str) -> None: ...


class SandboxSms:
    """Behaves like a gateway (latency, optional failures) and keeps the last messages in memory,
    where GET /sandbox/sms shows them to tests and to people trying `make run`."""

    def __init__(self, *, delay_ms: int = 5, failure_rate: float = 0.0, keep: int = 1000):
        self.delay_ms = delay_ms
        self.failure_rate = failure_rate
        self.messages: deque[dict] = deque(maxlen=keep)

    async def send(self, mobile: str, text: str) -> None:
        await asyncio.sleep(self.delay_ms / 1000)
        if self.failure_rate and random.random() < self.failure_rate:
            raise SmsUnavailable("sandbox gateway refused the message")
        self.messages.append({"mobile": mobile, "text": text, "sent_at": datetime.now(UTC).isoformat()})

    def sent_to(self, mobile: str) -> list[dict]:
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
                response = await client.post(
                    self.url, json={"mobile": mobile, "text": text}, headers={"X-Api-Key": self.api_key}
                )
        except httpx.HTTPError as exc:
            raise SmsUnavailable(type(exc).__name__) from exc
        if response.status_code >= 300:
            raise SmsUnavailable(f"gateway answered {response.status_code}")
