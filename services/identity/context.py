"""What identity's request handlers need besides the session, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends

from kit.deps import from_app_state
from kit.events import EventData, envelope
from kit.secretbox import SecretBox
from services.identity.adapters import Adapters
from services.identity.domain.lockout import LockoutPolicy
from services.identity.keys import KeyRing
from services.identity.models import outbox
from services.identity.passwords import Passwords
from services.identity.settings import Settings


@dataclass
class Identity:
    settings: Settings
    keyring: KeyRing
    passwords: Passwords
    adapters: Adapters
    # Kiosk secrets at rest (kit.secretbox); None outside a sandbox without IDENTITY_SECRETS_KEY.
    box: SecretBox | None = None

    @property
    def lockout(self) -> LockoutPolicy:
        s = self.settings
        return LockoutPolicy(
            max_failures=s.lockout_max_failures,
            window=timedelta(seconds=s.lockout_window_seconds),
            duration=timedelta(seconds=s.lockout_duration_seconds),
        )

    @property
    def access_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.access_token_ttl_seconds)

    @property
    def longest_ttl(self) -> timedelta:
        """The longest-lived access token (a counter token): how long a revocation must be kept."""
        return timedelta(seconds=self.settings.longest_token_ttl_seconds)


# What identity's handlers reach with ``identity_of(request)`` or ``context: IdentityContext``.
identity_of = from_app_state("identity", Identity)
IdentityContext = Annotated[Identity, Depends(identity_of)]


def now() -> datetime:
    return datetime.now(UTC)


async def publish(session, data: EventData, *, subject: str) -> None:
    """Write an identity event into the outbox, in the caller's transaction."""
    await outbox.add(session, envelope(data, subject=subject))
