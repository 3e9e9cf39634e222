"""Bearer-token verification every service (and the gateway) does on its own.

Access tokens are JWTs signed by identity with EdDSA (Ed25519) and a ``kid``; the public keys are
published as a JWKS. The claims are the contract in docs/adr/0002-token-claims.md:
``sub`` subject id, ``kind`` person|enterprise|officer, ``lvl`` real-name level 1–4, ``act``
{"sub": person} when an agent acts for an enterprise, ``scope`` mandate scopes, ``roles`` and
``dept`` for officers, ``sid`` the session (refresh family), ``jti``, ``iat``, ``exp``, ``iss``, ``aud``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from fastapi import Request
from jwt.algorithms import OKPAlgorithm

from kit.errors import Problem
from kit.revocation import RevocationList

ALGORITHMS = ["EdDSA"]


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by a verified token."""

    subject: str
    kind: str
    level: int
    actor: str | None = None
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    department: str | None = None
    session_id: str | None = None
    token_id: str | None = None
    channel: str = "online"
    device: str | None = None
    helper: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        act = claims.get("act") or {}
        helper = claims.get("hlp") or {}
        return cls(
            subject=claims["sub"],
            kind=claims.get("kind", "person"),
            level=int(claims.get("lvl", 1)),
            actor=act.get("sub") if isinstance(act, dict) else None,
            scopes=tuple((claims.get("scope") or "").split()),
            roles=tuple(claims.get("roles") or ()),
            department=claims.get("dept"),
            session_id=claims.get("sid"),
            token_id=claims.get("jti"),
            channel=str(claims.get("chn") or "online"),
            device=claims.get("dev"),
            helper=helper.get("sub") if isinstance(helper, dict) else None,
            claims=claims,
        )


class InvalidToken(Exception):
    pass


class TokenRevoked(InvalidToken):
    """A valid token that identity has revoked (logout, revoked mandate, …) before its expiry."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"token revoked ({reason})")
        self.reason = reason


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Authentication required", detail, headers={"WWW-Authenticate": "Bearer"})


def token_revoked(reason: str) -> Problem:
    """401 for a revoked token: the client must sign in again (a refresh will not help)."""
    return Problem(
        401,
        "token-revoked",
        "Token revoked",
        f"this token was revoked ({reason}); sign in again",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token", error_description="token revoked"'},
        reason=reason,
    )


def public_keys_from_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    """kid → public key for every Ed25519 key in a JWKS document."""
    keys = {}
    for jwk in jwks.get("keys", []):
        if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and jwk.get("kid"):
            keys[jwk["kid"]] = OKPAlgorithm.from_jwk(json.dumps(jwk))
    return keys


KeyFetcher = Callable[[], Awaitable[dict[str, Any]]]


def http_jwks_fetcher(url: str, timeout: float = 3.0) -> KeyFetcher:
    async def fetch() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
            response.raise_for_status()
            return public_keys_from_jwks(response.json())

    return fetch


class TokenVerifier:
    """Verifies tokens against cached keys; refetches on an unknown kid at most once per interval."""

    def __init__(
        self,
        fetch_keys: KeyFetcher,
        *,
        issuer: str,
        audience: str,
        min_refetch_interval: float = 10.0,
        cache_size: int = 10_000,
        revocations: RevocationList | None = None,
    ):
        self.fetch_keys = fetch_keys
        # Checked on every verify, cached or not: a revocation must end a token already cached.
        self.revocations = revocations
        # token → (claims, exp): a client sends the same token many times; checking its signature
        # once per token instead of once per request is most of the cost of verification.
        self._verified: OrderedDict[str, tuple[dict[str, Any], float, str]] = OrderedDict()
        self.cache_size = cache_size
        self.issuer = issuer
        self.audience = audience
        self.min_refetch_interval = min_refetch_interval
        self.keys: dict[str, Any] = {}
        self._last_fetch = float("-inf")
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._last_fetch < self.min_refetch_interval:
                return
            self._last_fetch = time.monotonic()
            try:
                self.keys = await self.fetch_keys()
            except Exception as exc:  # identity away: keep the keys we have
                raise InvalidToken(f"signing keys unavailable ({type(exc).__name__})") from exc

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; InvalidToken if it is not valid, TokenRevoked if it was revoked."""
        claims = await self._verify_signed(token)
        if self.revocations is not None:
            reason = self.revocations.refusal_for_claims(claims)
            if reason is not None:
                raise TokenRevoked(reason)
        return claims

    async def _verify_signed(self, token: str) -> dict[str, Any]:
        cached = self._verified.get(token)
        if cached is not None:
            claims, expires, kid = cached
            if time.time() < expires and kid in self.keys:  # a withdrawn key ends its tokens too
                return claims
            del self._verified[token]
        claims = await self._verify_uncached(token)
        if self.cache_size:
            kid = str(jwt.get_unverified_header(token).get("kid"))
            self._verified[token] = (claims, float(claims["exp"]), kid)
            if len(self._verified) > self.cache_size:
                self._verified.popitem(last=False)
        return claims

    async def _verify_uncached(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("algorithm not allowed")
        kid = str(header.get("kid"))
        if kid not in self.keys:
            await self._refresh()
        key = self.keys.get(kid)
        if key is None:
            raise InvalidToken("unknown signing key")
        try:
            return jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {type(exc).__name__}") from exc


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("a Bearer token is required")
    return token.strip()


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the verified caller. Identity headers from outside are never trusted."""
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        claims = await verifier.verify(bearer_token(request))
    except TokenRevoked as exc:
        raise token_revoked(exc.reason) from exc
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from exc
    return Principal.from_claims(claims)


def require_roles(principal: Principal, *roles: str) -> None:
    if principal.kind != "officer" or not set(roles) & set(principal.roles):
        raise Problem(403, "forbidden", "Not allowed", f"requires one of the roles: {', '.join(roles)}")
