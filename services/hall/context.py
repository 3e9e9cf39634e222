"""What the use cases share for one app: settings, the calendar, the SMS gateway, the code key and
a clock tests move (``app.state.hall``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from kit.deps import from_app_state
from services.hall.adapters.calendar import HttpCalendar, LocalCalendar, WorkingDays
from services.hall.adapters.sms import HttpSms, SandboxSms, SmsSender
from services.hall.settings import Settings

SANDBOX_CODE_SECRET = "sandbox-only-hall-check-in-code-secret"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    settings: Settings
    calendar: WorkingDays
    sms: SmsSender
    code_secret: bytes
    now: Callable[[], datetime] = field(default=_utc_now)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def current_time(self) -> datetime:
        return self.now()

    @classmethod
    def from_settings(cls, settings: Settings, *, calendar: WorkingDays | None = None,
                      sms: SmsSender | None = None) -> Context:  # fmt: skip
        """The configured adapters; refuses to start without HALL_CODE_SECRET outside a sandbox."""
        secret = settings.code_secret.get_secret_value()
        if not secret:
            if not settings.sandbox:
                raise RuntimeError("HALL_CODE_SECRET is required outside a sandbox")
            secret = SANDBOX_CODE_SECRET
        if calendar is None:
            calendar = (
                HttpCalendar(settings.calendar_url, cache_seconds=settings.calendar_cache_seconds,
                             timeout=settings.calendar_timeout_seconds)
                if settings.calendar == "http" else LocalCalendar()
            )  # fmt: skip
        if sms is None:
            sms = (
                HttpSms(settings.sms_url, settings.sms_api_key.get_secret_value(), settings.sms_timeout_seconds)
                if settings.sms == "http" else SandboxSms()
            )  # fmt: skip
        return cls(settings=settings, calendar=calendar, sms=sms, code_secret=secret.encode())


hall_context = from_app_state("hall", Context)
