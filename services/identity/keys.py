"""The rotating Ed25519 signing keys, shared by replicas through the database.

With several replicas: a key is committed before any replica signs with it, and every replica's
``/.well-known/jwks.json`` reads the keys from the database (``published_jwks``), so a token one
replica signed with a key it has just made is never checked against another replica's JWKS that
lacks it (each replica reloaded only every minute: up to a minute of "unknown signing key"). A
rotation runs under a PostgreSQL advisory lock and looks again inside it, so replicas that decide
to rotate at once make one key, not one each.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.auth import public_keys_from_jwks
from services.identity.models import SigningKey

# pg_advisory_xact_lock key of the rotation (any constant no other lock of this database uses).
ROTATION_LOCK = 0x6B6579726F74  # "keyrot"


class KeyRing:
    """Signs with the newest key; publishes every key whose tokens may still be alive."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, rotation: timedelta, token_ttl: timedelta):
        self.sessionmaker = sessionmaker
        self.rotation = rotation
        self.token_ttl = token_ttl
        self._keys: list[SigningKey] = []
        self._private: dict[str, Ed25519PrivateKey] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        async with self.sessionmaker() as session:
            self._keys = await _all_keys(session)

    def _published(self, now: datetime) -> list[SigningKey]:
        horizon = now - self.rotation - self.token_ttl - timedelta(minutes=5)
        return [key for key in self._keys if key.created_at >= horizon]

    def current(self) -> SigningKey:
        """The newest key. Rotation happens in ``rotate`` (start-up and a background task), never
        inside a request, so signing never writes to the database."""
        if not self._keys:
            raise RuntimeError("no signing key: call rotate() at start-up")
        return self._keys[-1]

    async def rotate(self, now: datetime | None = None) -> SigningKey:
        """Create a new key when the newest is older than the rotation period (or none exists)."""
        now = now or datetime.now(UTC)
        async with self._lock, self.sessionmaker() as session:
            async with session.begin():
                if session.get_bind().dialect.name == "postgresql":  # replicas rotate one at a time
                    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ROTATION_LOCK})
                keys = await _all_keys(session)
                if keys and now - keys[-1].created_at < self.rotation:
                    self._keys = keys
                    return keys[-1]
                key = _new_key(now)
                session.add(key)
            self._keys = [*keys, key]  # committed: any replica's JWKS has it before a token is signed with it
            return key

    async def run_rotation(self, every: float = 60.0) -> None:
        """Background task: rotate on time, and pick up keys another replica created."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.rotate()
            except Exception:  # the database may be away for a moment; try next round
                continue

    def _private_key(self, key: SigningKey) -> Ed25519PrivateKey:
        if key.kid not in self._private:
            self._private[key.kid] = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
        return self._private[key.kid]

    async def sign(self, claims: dict[str, Any]) -> str:
        key = self.current()
        return jwt.encode(claims, self._private_key(key), algorithm="EdDSA", headers={"kid": key.kid, "typ": "JWT"})

    def jwks(self, now: datetime | None = None) -> dict[str, Any]:
        return {"keys": [json.loads(key.public_jwk) for key in self._published(now or datetime.now(UTC))]}

    async def published_jwks(self) -> dict[str, Any]:
        """The JWKS as the database has it now: another replica may have rotated since this one
        last looked, and already signs with the new key (module doc)."""
        await self.load()
        return self.jwks()

    async def public_keys(self) -> dict[str, Any]:
        """For identity's own token checks: reloads from the database (another replica may have rotated)."""
        await self.load()
        return public_keys_from_jwks(self.jwks())


async def _all_keys(session: AsyncSession) -> list[SigningKey]:
    return list((await session.execute(select(SigningKey).order_by(SigningKey.created_at))).scalars().all())


def _new_key(now: datetime) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    kid = f"{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": "EdDSA"})
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return SigningKey(kid=kid, private_pem=pem, public_jwk=json.dumps(jwk), created_at=now)
