"""Hall's settings (env prefix HALL_)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HALL_", extra="ignore")

    service_name: str = "hall"
    timezone: str = "Asia/Shanghai"  # opening hours, slot times, the SMS text and a ticket's day
    # The working-day calendar: ``http`` reads the platform's (caseflow's public GET /calendar/{year},
    # cached); ``local`` asks the chinesecalendar package (sandbox, tests, a hall without caseflow).
    calendar: Literal["http", "local"] = "local"
    calendar_url: str = "http://127.0.0.1:8003"
    calendar_cache_seconds: float = Field(default=3600.0, ge=0)
    calendar_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # The SMS gateway: ``sandbox`` keeps the messages (GET /sandbox/sms when HALL_SANDBOX=true).
    sms: Literal["sandbox", "http"] = "sandbox"
    sms_url: str = ""
    sms_api_key: SecretStr = SecretStr("")
    sms_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    sms_enabled: bool = True  # the dispatcher of outgoing messages (off: they wait in the table)
    sms_poll_seconds: float = Field(default=1.0, gt=0)
    sms_max_attempts: int = Field(default=8, ge=1, le=100)
    sms_backoff_base_seconds: float = Field(default=5.0, gt=0)
    # Check-in codes are kept only as HMAC-SHA256 under this key (with the hall and the day).
    code_secret: SecretStr = SecretStr("")
    # Bookings: how far ahead a slot may be booked; when check-in opens before a slot starts.
    booking_days_ahead: int = Field(default=14, ge=1, le=90)
    check_in_early_minutes: int = Field(default=60, ge=0, le=240)
    # Walk-in numbers: from this long before the hall opens until it closes, on working days.
    walk_in_early_minutes: int = Field(default=30, ge=0, le=240)
    # The hall's machine: after this many wrong codes from one source within the window, 429.
    check_in_max_failures: int = Field(default=10, ge=1, le=1000)
    check_in_failure_window_seconds: int = Field(default=600, ge=10, le=86400)
    # No-shows: a booking whose slot ended this long ago without check-in is marked no_show.
    no_show_enabled: bool = True
    no_show_grace_minutes: int = Field(default=0, ge=0, le=240)
    no_show_poll_seconds: float = Field(default=30.0, gt=0)
    no_show_batch_size: int = Field(default=100, ge=1, le=1000)
