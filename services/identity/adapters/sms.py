"""SMS gateway adapter: a sandbox that keeps every message, and an HTTP client for the real one
(kit.sms)."""

from __future__ import annotations

import asyncio
import random

from kit.sms import HttpSms, KeptSms, SmsSender, SmsUnavailable

__all__ = ["HttpSms", "SandboxSms", "SmsSender", "SmsUnavailable"]


class SandboxSms(KeptSms):
    """Behaves like a gateway (latency, optional failures) and keeps the last messages in memory,
    where GET /sandbox/sms shows them to tests and to people trying `make run`."""

    def __init__(self, *, delay_ms: int = 5, failure_rate: float = 0.0, keep: int = 1000):
        super().__init__(keep=keep)
        self.delay_ms = delay_ms
        self.failure_rate = failure_rate

    async def send(self, mobile: str, text: str) -> None:
        await asyncio.sleep(self.delay_ms / 1000)
        if self.failure_rate and random.random() < self.failure_rate:
            raise SmsUnavailable("sandbox gateway refused the message")
        self.keep(mobile, text)
