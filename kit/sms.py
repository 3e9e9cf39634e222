"""The SMS gateway as identity and hall use it: the sender's protocol, its one failure
(``SmsUnavailable``: not taken, the caller may try again), the HTTP client for the real gateway
(JSON ``{mobile, text}`` with an API key header), and what every sandbox sender keeps: the last
messages, newest first per mobile, for ``GET /sandbox/sms``."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Protocol

import httpx


class SmsUnavailable(Exception):
    """The SMS gateway did not take the message; the caller may try again."""


class SmsSender(Protocol):
    async def send(self, mobile: str, text: str) -> None: ...


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


class KeptSms:
    """A sandbox sender's memory: the last ``keep`` messages."""

    def __init__(self, *, keep: int = 1000) -> None:
        self.messages: deque[dict[str, str]] = deque(maxlen=keep)

    def keep(self, mobile: str, text: str) -> None:
        self.messages.append({"mobile": mobile, "text": text, "sent_at": datetime.now(UTC).isoformat()})

    def sent_to(self, mobile: str) -> list[dict[str, str]]:
        """Newest first."""
        return [m for m in reversed(self.messages) if m["mobile"] == mobile]
