"""Test helpers every service's tests share: tokens signed exactly as identity signs them, and an
ASGI app served on a real loopback socket (``serve``).

A :class:`TokenSigner` holds a fresh Ed25519 key; the app under test gets its public half through
``key_fetcher=signer.fetch_keys`` (or a JWKS server serving ``signer.jwk()``), and tests sign
tokens with the claims of docs/adr/0002-token-claims.md. Imported by tests only, never by a service.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import OKPAlgorithm

from kit.access import Decision
from kit.auth import public_keys_from_jwks

ISSUER = "yiwang-identity"
AUDIENCE = "yiwang"
PERSON_ID = "11010519491231002X"  # GB 11643's published example: a valid resident ID number
# Test modules sign tokens when they are imported, and pytest imports every module before it runs
# the first test: a token must outlive the whole suite (about 20 minutes on two cores, both
# databases), or the modules run last see only "token expired". Expiry itself is tested with
# tokens made for it (an explicit ``exp``).
TOKEN_TTL_SECONDS = 6 * 3600


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header for a token."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class TokenSigner:
    """A signing key as identity has one: ``kid`` in the token header, the public key as a JWK.

    ``defaults`` are the claims every token gets unless a call overrides them; a claim given as
    ``None`` is left out (a token from before that claim existed).
    """

    kid: str = "test-key"
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    defaults: dict[str, Any] = field(default_factory=lambda: {"sub": PERSON_ID, "kind": "person", "lvl": 2})

    def jwk(self) -> dict[str, Any]:
        """The public key as identity's JWKS lists it."""
        data: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(self.private.public_key()))
        data.update(kid=self.kid, use="sig", alg="EdDSA")
        return data

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}

    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    async def fetch_keys(self) -> dict[str, Any]:
        """A ``kit.auth.KeyFetcher``: what the app would read from identity's JWKS."""
        return public_keys_from_jwks(self.jwks())

    def token(self, **claims: Any) -> str:
        """A signed token: iss, aud, iat, exp (6 hours), a fresh jti, the defaults, then ``claims``."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + TOKEN_TTL_SECONDS,
            "jti": uuid.uuid4().hex,
            **self.defaults,
            **claims,
        }
        payload = {key: value for key, value in payload.items() if value is not None}
        return jwt.encode(payload, self.private, algorithm="EdDSA", headers={"kid": self.kid})

    def officer_token(self, login: str, *, roles: tuple[str, ...], department: str | None, level: int = 3) -> str:
        """An officer's token: ``sub`` = ``officer:<login>``, its roles and department."""
        return self.token(sub=f"officer:{login}", kind="officer", lvl=level, roles=list(roles), dept=department)


@asynccontextmanager
async def serve(app: Any, *, lifespan: Literal["auto", "on", "off"] = "on") -> AsyncIterator[str]:
    """``app`` under uvicorn on ``http://127.0.0.1:<free port>`` (a real socket) until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan=lifespan, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


def access_cells(access: Any) -> list[tuple[str, str]]:
    """Every (action, relation) of a service's access module (``ACTIONS`` × ``RELATIONS``): what its
    walk of the whole table is parametrized with."""
    return list(itertools.product(access.ACTIONS, access.RELATIONS))


def access_refusals(access: Any, action: str, relation: str) -> Iterator[tuple[tuple[str, ...], Decision]]:
    """One cell of a service's access table walked for no role and each of ``access.OFFICER_ROLES``
    alone: ``access.decide`` must allow exactly what ``access.TABLE``'s cell says (read here on its
    own, not through ``kit.access``); each refusal is yielded as ``(roles, decision)`` for the
    service's test to check against its own refusal rules (404/403/401)."""
    for roles in [(), *((role,) for role in access.OFFICER_ROLES)]:
        cell = access.TABLE[action].get(relation)
        expected = cell is not None and ("*" in cell or bool(cell & set(roles)))
        decision = access.decide(action, relation, roles)
        assert decision.allowed == expected, (action, relation, roles)
        if not expected:
            yield roles, decision


async def until(condition: Callable[[], Any], what: str, *, tries: int = 200, interval: float = 0.05) -> None:
    """Poll ``condition()`` — what a background task (a consumer, a reload) will make true — every
    ``interval`` seconds; AssertionError naming ``what`` when ``tries`` polls did not see it."""
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(interval)  # polling what runs in the background
    raise AssertionError(f"not seen: {what}")
