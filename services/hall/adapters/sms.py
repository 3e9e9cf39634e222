"""SMS gateway: a sandbox that keeps the messages (and can be told to fail or to be slow), and an
HTTP client for the real gateway (kit.sms). Messages are sent after commit by sms_dispatch.py, from
the ``outgoing_sms`` table, with retries: a failure here loses nothing."""

from __future__ import annotations

import asyncio

from kit.sms import HttpSms, KeptSms, SmsSender, SmsUnavailable

__all__ = ["HttpSms", "SandboxSms", "SmsSender", "SmsUnavailable"]


class SandboxSms(KeptSms):
    """Keeps the last messages in memory for GET /sandbox/sms. ``fail_next`` refuses that many
    sends; ``delay_seconds`` makes every send slow."""

    def __init__(self, *, keep: int = 1000) -> None:
        super().__init__(keep=keep)
        self.fail_next = 0
        self.delay_seconds = 0.0

    async def send(self, mobile: str, text: str) -> None:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.fail_next > 0:
            self.fail_next -= 1
            raise SmsUnavailable("sandbox gateway refused the message")
        self.keep(mobile, text)
