"""The gateway as a pure ASGI app: ``uvicorn gateway.main:create_app --factory --port 8000``.

No framework routing on the hot path (DESIGN §7): one pass over the request headers, a route
table lookup, a cached token check, two token buckets and a pooled aiohttp request.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import jwt
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest

from gateway.client import Timeouts, UpstreamClient
from gateway.docs import DocsPages
from gateway.kiosks import KioskDirectory
from gateway.openapi import AreaSource, merge_openapi
from gateway.partners import PartnerDirectory
from gateway.proxy import BodyTooLarge, ClientGone, Forwarder, is_dropped_request_header, read_body
from gateway.ratelimit import RateLimiter
from gateway.routes import (
    DEFAULT_RULES,
    DENY,
    KIOSK,
    PUBLIC,
    SIGNED,
    RouteRule,
    RouteTable,
    authorize,
    path_is_clean,
    rule_from_config,
    split_api_path,
)
from gateway.settings import GatewaySettings
from gateway.signing import (
    NONCE_HEADER,
    PARTNER_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    MemoryNonceStore,
    NonceStore,
    PartnerKeys,
    SignatureRejected,
    check_signature,
)
from gateway.upstreams import Upstream
from kit.auth import InvalidToken, TokenRevoked, TokenVerifier, public_keys_from_jwks, token_revoked, unauthorized
from kit.bus import Bus
from kit.errors import PROBLEM_JSON, Problem
from kit.logs import configure_logging, get_logger
from kit.observability import Metrics, sane_request_id
from kit.revocation import RevocationFeed, RevocationList, helper_of, register_revocation_metrics
from kit.signing import verify_request

log = get_logger("yiwang.gateway")

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CAPTURED = frozenset(
    {
        b"authorization",
        b"origin",
        b"x-request-id",
        b"traceparent",
        b"content-length",
        b"transfer-encoding",
        b"x-forwarded-for",
        b"host",
        b"x-partner-id",
        b"x-timestamp",
        b"x-nonce",
        b"x-signature",
        b"access-control-request-method",
        b"access-control-request-headers",
    }
)
_CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, X-Request-Id"
_CORS_EXPOSE_HEADERS = b"X-Request-Id, Retry-After, ETag, Location, Content-Disposition"
_CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"


_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})")
_NO_TRACE = "0" * 32


def _fresh_ids() -> str:
    """48 random hex digits: a request id (the first 32, also the trace id of a trace we start)
    and a span id (the last 16), neither all zeros (W3C Trace Context).

    From the ``random`` module, not the OS: these ids correlate logs and guard nothing, one call
    costs a fraction of ``os.urandom`` (a system call) and ``uuid4``, and ``random`` reseeds itself
    in every forked worker."""
    return f"{random.getrandbits(192) | (1 << 64) | 1:048x}"


def _traceparent(incoming: bytes | None, ids: str) -> str:
    """Continue a caller's W3C trace with a new span of ours (``ids[32:]``), or start one."""
    if incoming is not None and len(incoming) == 55:
        match = _TRACEPARENT.fullmatch(incoming.decode("latin-1"))
        if match is not None and match[1] != _NO_TRACE:
            return f"00-{match[1]}-{ids[32:]}-{match[2]}"
    return f"00-{ids[:32]}-{ids[32:]}-01"


def _identity_headers(claims: dict[str, Any]) -> list[tuple[str, str]]:
    """The headers of docs/adr/0002-token-claims.md, from verified claims."""
    headers = [
        ("X-Subject-Id", str(claims["sub"])),
        ("X-Subject-Kind", str(claims.get("kind", "person"))),
        ("X-Subject-Level", str(claims.get("lvl", 1))),
    ]
    act = claims.get("act")
    if isinstance(act, dict) and act.get("sub"):
        headers.append(("X-Actor-Id", str(act["sub"])))
    roles = claims.get("roles")
    if roles:
        headers.append(("X-Roles", ",".join(str(r) for r in roles)))
    if claims.get("dept"):
        headers.append(("X-Dept", str(claims["dept"])))
    # Header values must be latin-1 on the wire; a claim that is not cannot be a header.
    return [(k, v) for k, v in headers if v.isascii() and "\n" not in v and "\r" not in v]


class _Verified:
    __slots__ = ("claims", "expires", "kid", "headers", "subject", "session_id", "actor", "issued_at", "device",
                 "helper", "helper_session")  # fmt: skip

    def __init__(self, claims: dict[str, Any], kid: str | None) -> None:
        self.claims = claims
        self.expires = float(claims["exp"])
        self.kid = kid
        self.headers = _identity_headers(claims)
        self.subject = str(claims["sub"])
        # What a revocation matches on (contracts.events.identity.TokensRevoked), read once.
        sid = claims.get("sid")
        self.session_id = str(sid) if sid else None
        act = claims.get("act")
        self.actor = str(act["sub"]) if isinstance(act, dict) and act.get("sub") else None
        iat = claims.get("iat")
        self.issued_at = float(iat) if isinstance(iat, int | float) else None
        # A token made at a kiosk (ADR 0025) is good only on requests its kiosk signs: ``device`` is
        # that kiosk ("" for a kiosk token naming none, which no signature can satisfy).
        self.device = str(claims.get("dev") or "") if claims.get("chn") == "kiosk" else None
        self.helper, self.helper_session = helper_of(claims)  # a counter token's officer


def _signed_parts(path: str, scope: dict[str, Any], captured: dict[bytes, bytes]) -> tuple[dict[str, str], str, str]:
    """What a request's signature is checked on: the signature headers it carried, its path as sent
    (raw, before any decoding) and its query."""
    headers = {
        name: captured[raw].decode("latin-1")
        for name, raw in (
            (PARTNER_HEADER, b"x-partner-id"),
            (TIMESTAMP_HEADER, b"x-timestamp"),
            (NONCE_HEADER, b"x-nonce"),
            (SIGNATURE_HEADER, b"x-signature"),
        )
        if raw in captured
    }
    raw_path = scope.get("raw_path")
    return (
        headers,
        raw_path.decode("latin-1") if raw_path else path,
        (scope.get("query_string") or b"").decode("latin-1"),
    )


class Gateway:
    """The ASGI application."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        nonce_store: NonceStore | None = None,
        configure_logs: bool = True,
    ) -> None:
        self.settings = settings
        self.configure_logs = configure_logs
        rules: list[RouteRule] = [rule_from_config(r) for r in settings.extra_routes] + list(DEFAULT_RULES)
        self.routes = RouteTable(rules, settings.environment)
        self.upstreams = {
            area: Upstream(area, urls, cooldown_seconds=settings.replica_cooldown_seconds)
            for area, urls in settings.upstreams.items()
        }
        self.partner_directory = PartnerDirectory(
            {pid: PartnerKeys.from_config(p.secrets, p.paths) for pid, p in settings.partners.items()},
            source_url=settings.partner_source_url,
            key_id=settings.exchange_key_id,
            secret=settings.exchange_secret.get_secret_value(),
            refresh_seconds=settings.partner_refresh_seconds,
        )
        self.kiosk_directory = KioskDirectory(
            source_url=settings.kiosk_source_url,
            key_id=settings.identity_key_id,
            secret=settings.identity_secret.get_secret_value(),
            refresh_seconds=settings.kiosk_refresh_seconds,
        )
        self.nonces: NonceStore = nonce_store or MemoryNonceStore()
        self.ip_limiter = RateLimiter(
            settings.rate_limit_ip_per_second, settings.rate_limit_ip_burst, settings.rate_limit_max_keys
        )
        self.subject_limiter = RateLimiter(
            settings.rate_limit_subject_per_second, settings.rate_limit_subject_burst, settings.rate_limit_max_keys
        )
        self.trusted_proxies = frozenset(settings.trusted_proxies)
        self.cors_origins = frozenset(o.rstrip("/") for o in settings.cors_origins)
        self.verifier = TokenVerifier(
            self._fetch_jwks,
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            min_refetch_interval=settings.jwks_min_refetch_seconds,
            cache_size=0,  # the gateway caches per token itself, with the headers derived from it
        )
        self._verified: dict[str, _Verified] = {}
        self.metrics = Metrics("gateway")
        self.jwks_fetches = Counter(
            "gateway_jwks_fetches_total", "JWKS fetches from identity", ["outcome"], registry=self.metrics.registry
        )
        self.refusals = Counter(
            "gateway_refusals_total", "Requests the gateway answered itself", ["reason"], registry=self.metrics.registry
        )
        self.failovers = Counter(
            "gateway_upstream_failovers_total", "Requests handed to another replica after a failed connection",
            ["area"], registry=self.metrics.registry,
        )  # fmt: skip
        directory = self.partner_directory
        Gauge("gateway_department_partners", "Department partners read from exchange", registry=self.metrics.registry
              ).set_function(lambda: len(directory.dynamic))  # fmt: skip
        Gauge("gateway_partner_reload_failures", "Failed reloads of exchange's partner keys since start",
              registry=self.metrics.registry).set_function(lambda: directory.failures)  # fmt: skip
        kiosks = self.kiosk_directory
        Gauge("gateway_kiosks", "Self-service kiosks read from identity", registry=self.metrics.registry
              ).set_function(lambda: len(kiosks.dynamic))  # fmt: skip
        Gauge("gateway_kiosk_reload_failures", "Failed reloads of identity's kiosk keys since start",
              registry=self.metrics.registry).set_function(lambda: kiosks.failures)  # fmt: skip
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.session: aiohttp.ClientSession | None = None
        self.client: UpstreamClient | None = None
        self.forwarder: Forwarder | None = None
        self._timeouts: dict[float, Timeouts] = {}
        self._openapi_cache: tuple[float, bytes] | None = None
        self._openapi_lock = asyncio.Lock()
        self.revocations = RevocationList()
        self.bus: Bus | None = None
        self.revocation_feed: RevocationFeed | None = None
        register_revocation_metrics(self.metrics.registry, self.revocations, lambda: self.revocation_feed)
        self.docs = DocsPages("/docs", "/api/v1/openapi.json") if settings.docs_enabled else None

    # ---------------------------------------------------------------- ASGI entry

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # report, do not serve half-configured
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        if self.configure_logs:
            configure_logging("gateway", self.settings.log_level, self.settings.log_json)
        # aiohttp for the gateway's own calls (JWKS, readiness, OpenAPI, partner and kiosk keys);
        # requests to the services go through the lean client of gateway/client.py (ADR 0035).
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(),  # never carry one user's cookies to another
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            trust_env=False,
        )
        self.client = UpstreamClient(
            limit=self.settings.upstream_pool_size, keepalive_seconds=self.settings.upstream_keepalive_seconds
        )
        self.forwarder = Forwarder(self.client, self.failovers)
        # Warm the key cache without spending the verifier's refetch allowance: identity may
        # start after the gateway, and then the first request must still be able to fetch.
        try:
            self.verifier.keys = await asyncio.wait_for(self._fetch_jwks(), 2.0)
        except Exception as exc:
            log.warning("jwks not loaded at startup", error=type(exc).__name__, url=self.settings.jwks_url)
        if self.settings.nats_enabled and not self.settings.nats_url:
            log.error(
                "GATEWAY_NATS_URL is not set: revoked tokens are NOT refused by the gateway until "
                "they expire (the services still refuse them); set it to identity's NATS (ADR 0010)"
            )
        if self.following_revocations:
            # Read-only: the gateway publishes nothing, so it declares no stream (not even DEADLETTER).
            self.bus = Bus(self.settings.nats_url, name="gateway", dead_letters=False)
            self.revocation_feed = RevocationFeed(
                self.bus, self.revocations, replay_seconds=self.settings.access_token_max_ttl_seconds
            )
            await self.bus.start()
            await self.revocation_feed.start()
        await self.partner_directory.start(self.session, self.bus)
        await self.kiosk_directory.start(self.session, self.bus)
        log.info("gateway started", areas=sorted(self.upstreams), environment=self.settings.environment)
        # Everything built so far (modules, settings, tables) lives as long as the process: out of
        # the collector's sight, a full collection no longer walks it between requests (ADR 0035).
        # Garbage first, or it would be kept for good.
        gc.collect()
        gc.freeze()

    @property
    def following_revocations(self) -> bool:
        return self.settings.nats_enabled and bool(self.settings.nats_url)

    @property
    def partners(self) -> dict[str, PartnerKeys]:
        """Every signed partner now: static ones and exchange's department partners."""
        return self.partner_directory.partners

    async def shutdown(self) -> None:
        await self.partner_directory.stop()
        await self.kiosk_directory.stop()
        if self.revocation_feed is not None:
            await self.revocation_feed.stop()
        if self.bus is not None:
            await self.bus.close()
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def _fetch_jwks(self) -> dict[str, Any]:
        assert self.session is not None
        timeout = aiohttp.ClientTimeout(total=3.0)
        try:
            async with self.session.get(self.settings.jwks_url, timeout=timeout) as response:
                response.raise_for_status()
                keys = public_keys_from_jwks(await response.json(content_type=None))
        except Exception:
            self.jwks_fetches.labels("failed").inc()
            raise
        self.jwks_fetches.labels("ok").inc()
        return keys

    # ---------------------------------------------------------------- helpers

    def _timeout(self, read: float) -> Timeouts:
        timeout = self._timeouts.get(read)
        if timeout is None:
            timeout = Timeouts(self.settings.connect_timeout_seconds, read)
            self._timeouts[read] = timeout
        return timeout

    def _observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            label_method = method if method in _KNOWN_METHODS else "OTHER"
            children = (
                self.metrics.requests.labels("gateway", label_method, route, str(status)),
                self.metrics.latency.labels("gateway", label_method, route),
            )
            if len(self._children) < 10_000:
                self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)

    def _client_ip(self, scope: dict[str, Any], forwarded_for: str | None) -> str:
        client = scope.get("client")
        peer = client[0] if client else "unknown"
        if forwarded_for and peer in self.trusted_proxies:
            # Rightmost address that is not one of our proxies: the one a client cannot forge.
            for candidate in reversed([a.strip() for a in forwarded_for.split(",")]):
                if candidate and candidate not in self.trusted_proxies:
                    return candidate
        return peer

    def _cors_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        if origin and origin in self.cors_origins:
            return [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-expose-headers", _CORS_EXPOSE_HEADERS),
                (b"vary", b"Origin"),
            ]
        return []

    async def verify_token(self, token: str) -> _Verified:
        """Verified claims for a bearer token (cached per token until it expires); InvalidToken if
        not, TokenRevoked if identity revoked it (checked on every call, cached or not)."""
        verified = await self._verify_signed(token)
        reason = self.revocations.refusal(
            subject=verified.subject,
            session_id=verified.session_id,
            actor=verified.actor,
            issued_at=verified.issued_at,
            helper=verified.helper,
            helper_session=verified.helper_session,
        )
        if reason is not None:
            raise TokenRevoked(reason)
        return verified

    async def _verify_signed(self, token: str) -> _Verified:
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires > time.time() and cached.kid in self.verifier.keys:
                return cached
            del self._verified[token]
        claims = await self.verifier.verify(token)
        try:
            verified = _Verified(claims, jwt.get_unverified_header(token).get("kid"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidToken("invalid claims") from exc
        size = self.settings.verified_token_cache_size
        if size:
            if len(self._verified) >= size:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = verified
        return verified

    # ---------------------------------------------------------------- responses

    async def _send_json(
        self,
        send: Send,
        status: int,
        payload: Any,
        request_id: str,
        extra: list[tuple[bytes, bytes]],
        content_type: bytes = b"application/json",
    ) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            (b"cache-control", b"no-store"),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _send_problem(
        self, send: Send, problem: Problem, path: str, request_id: str, cors: list[tuple[bytes, bytes]], reason: str
    ) -> int:
        self.refusals.labels(reason).inc()
        extra = [(k.lower().encode(), v.encode("latin-1")) for k, v in (problem.headers or {}).items()]
        body = problem.body(path)
        body["request_id"] = request_id
        await self._send_json(send, problem.status, body, request_id, extra + cors, PROBLEM_JSON.encode())
        return problem.status

    # ---------------------------------------------------------------- the request

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        captured: dict[bytes, bytes] = {}
        forwarded: list[tuple[str, str]] = []
        for name, value in scope["headers"]:
            if name in _CAPTURED:
                captured[name] = value
            if not is_dropped_request_header(name):
                forwarded.append((name.decode("latin-1"), value.decode("latin-1")))

        raw_request_id = captured.get(b"x-request-id")
        ids = _fresh_ids()
        request_id = sane_request_id(raw_request_id.decode("latin-1")) if raw_request_id else ids[:32]
        raw_origin = captured.get(b"origin")
        origin = raw_origin.decode("latin-1") if raw_origin else None
        cors = self._cors_headers(origin)
        route = "unmatched"
        status = 500
        try:
            if method == "OPTIONS" and origin and b"access-control-request-method" in captured:
                route = "cors-preflight"
                status = await self._preflight(send, origin, captured, request_id, path)
                return
            if not path.startswith("/api/v1/") or path == "/api/v1/openapi.json":
                route, status = await self._own(scope, send, path, method, request_id, cors)
                return
            route, status = await self._proxy(
                scope, receive, send, method, path, captured, forwarded, request_id, ids, cors
            )
        except ClientGone:
            status = 499
        except Exception:
            log.exception("gateway error", path=path, method=method, request_id=request_id)
            status = 500
            try:
                await self._send_problem(
                    send, Problem(500, "internal", "Internal error"), path, request_id, cors, "internal"
                )
            except Exception:  # the response had started; the server closes the connection
                raise
        finally:
            self._observe(method, route, status, time.perf_counter() - started)

    async def _preflight(
        self, send: Send, origin: str, captured: dict[bytes, bytes], request_id: str, path: str
    ) -> int:
        if origin not in self.cors_origins:
            return await self._send_problem(
                send, Problem(403, "cors-origin", "Origin not allowed", f"{origin} is not an allowed origin"),
                path, request_id, [], "cors",
            )  # fmt: skip
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", _CORS_METHODS.encode()),
            (b"access-control-allow-headers", _CORS_ALLOW_HEADERS.encode()),
            (b"access-control-max-age", str(self.settings.cors_max_age_seconds).encode()),
            (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
            (b"x-request-id", request_id.encode()),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return 204

    async def _own(
        self, scope: dict[str, Any], send: Send, path: str, method: str, request_id: str, cors: list
    ) -> tuple[str, int]:
        """The gateway's own endpoints."""
        if method not in ("GET", "HEAD"):
            if path in ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json") or path.startswith("/docs"):
                problem = Problem(405, "method-not-allowed", "Method not allowed", headers={"Allow": "GET"})
                return path, await self._send_problem(send, problem, path, request_id, cors, "method")
        if path == "/healthz":
            await self._send_json(send, 200, {"status": "ok"}, request_id, cors)
            return path, 200
        if path == "/readyz":
            status, payload = await self.readiness()
            await self._send_json(send, status, payload, request_id, cors)
            return path, status
        if path == "/metrics":
            body = generate_latest(self.metrics.registry)
            await self._send_json(send, 200, body, request_id, cors, CONTENT_TYPE_LATEST.encode())
            return path, 200
        if path == "/api/v1/openapi.json":
            body = await self.openapi_document()
            await self._send_json(send, 200, body, request_id, cors)
            return path, 200
        if self.docs is not None and (path == self.docs.prefix or path.startswith(self.docs.prefix + "/")):
            page = self.docs.page(path)
            if page is not None:
                content_type, body, headers = page
                if not any(name == b"cache-control" for name, _ in headers):
                    headers = [*headers, (b"cache-control", b"no-store")]
                response_headers = [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                    *headers,
                ]
                await send({"type": "http.response.start", "status": 200, "headers": response_headers})
                await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
                return self.docs.prefix, 200
        problem = Problem(404, "not-found", "Not found", "no such route; the API is under /api/v1/<area>/")
        return "unmatched", await self._send_problem(send, problem, path, request_id, cors, "not-found")

    async def _proxy(
        self,
        scope: dict[str, Any],
        receive: Receive,
        send: Send,
        method: str,
        path: str,
        captured: dict[bytes, bytes],
        forwarded: list[tuple[str, str]],
        request_id: str,
        ids: str,
        cors: list[tuple[bytes, bytes]],
    ) -> tuple[str, int]:
        settings = self.settings
        split = split_api_path(path)
        upstream = self.upstreams.get(split[0]) if split else None
        if split is None or upstream is None:
            problem = Problem(404, "unknown-area", "Not found", "no service for this path")
            return "unmatched", await self._send_problem(send, problem, path, request_id, cors, "unknown-area")
        area, rest = split
        raw_path: bytes | None = scope.get("raw_path")
        if not path_is_clean(path, raw_path):
            problem = Problem(400, "bad-path", "Path not accepted", "dot segments and encoded separators are refused")
            return f"/api/v1/{area}/**", await self._send_problem(send, problem, path, request_id, cors, "bad-path")
        rule = self.routes.match(area, method, path)
        route = rule.label if rule is not None else f"/api/v1/{area}/**"
        access = rule.access if rule is not None else "token"
        if access == DENY:
            problem = Problem(404, "not-found", "Not found", "no such route")
            return route, await self._send_problem(send, problem, path, request_id, cors, "denied")

        forwarded_for = captured.get(b"x-forwarded-for")
        client_ip = self._client_ip(scope, forwarded_for.decode("latin-1") if forwarded_for else None)
        now = time.monotonic()
        wait = self.ip_limiter.hit(client_ip, now)
        if wait:
            return route, await self._too_many(send, wait, path, request_id, cors, "rate-limit-ip")

        body_limit = (
            rule.max_body_bytes if rule is not None and rule.max_body_bytes is not None else settings.max_body_bytes
        )
        raw_length = captured.get(b"content-length")
        chunked = b"transfer-encoding" in captured
        has_body = chunked or (raw_length is not None and raw_length != b"0")
        if raw_length is not None:
            if not raw_length.isdigit():
                problem = Problem(400, "bad-request", "Bad request", "Content-Length is not a number")
                return route, await self._send_problem(send, problem, path, request_id, cors, "bad-length")
            if int(raw_length) > body_limit:
                return route, await self._too_large(send, body_limit, path, request_id, cors)
        if chunked:
            # The service gets the body with its length unknown: drop a Content-Length beside it.
            forwarded = [(k, v) for k, v in forwarded if k != "content-length"]

        body: bytes | None = None
        authorization = captured.get(b"authorization")
        if access == SIGNED:
            limit = min(body_limit, settings.signed_max_body_bytes)
            try:
                body = await read_body(receive, limit) if has_body else b""
            except BodyTooLarge:
                return route, await self._too_large(send, limit, path, request_id, cors)
            problem = await self._check_signed(method, path, scope, captured, body, forwarded)
            if problem is not None:
                return route, await self._send_problem(send, problem, path, request_id, cors, "signature")
        elif access == KIOSK:
            limit = min(body_limit, settings.signed_max_body_bytes)
            try:
                body = await read_body(receive, limit) if has_body else b""
            except BodyTooLarge:
                return route, await self._too_large(send, limit, path, request_id, cors)
            problem = await self._check_kiosk(method, path, scope, captured, body, forwarded, device=None)
            if problem is not None:
                return route, await self._send_problem(send, problem, path, request_id, cors, "kiosk-signature")
        elif access == PUBLIC:
            if authorization:
                verified = await self._try_token(authorization)
                if verified is not None and verified.device is not None:
                    # A kiosk token on a public route: still only from its kiosk (a stolen one says nothing).
                    try:
                        body = await read_body(receive, body_limit) if has_body else b""
                    except BodyTooLarge:
                        return route, await self._too_large(send, body_limit, path, request_id, cors)
                    problem = await self._check_kiosk(method, path, scope, captured, body, forwarded,
                                                      device=verified.device)  # fmt: skip
                    if problem is not None:
                        return route, await self._send_problem(send, problem, path, request_id, cors, "kiosk-token")
                if verified is not None:
                    forwarded.extend(verified.headers)
        else:
            if not authorization:
                problem = unauthorized("a Bearer token is required")
                return route, await self._send_problem(send, problem, path, request_id, cors, "no-token")
            scheme, _, token = authorization.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                problem = unauthorized("a Bearer token is required")
                return route, await self._send_problem(send, problem, path, request_id, cors, "no-token")
            try:
                verified = await self.verify_token(token.strip())
            except TokenRevoked as exc:
                problem = token_revoked(exc.reason)
                return route, await self._send_problem(send, problem, path, request_id, cors, "revoked-token")
            except InvalidToken as exc:
                problem = unauthorized(str(exc))
                return route, await self._send_problem(send, problem, path, request_id, cors, "bad-token")
            denied = authorize(rule, verified.claims)
            if denied is not None:
                return route, await self._send_problem(send, denied, path, request_id, cors, "forbidden")
            if verified.device is not None:
                # A kiosk token is good only on a request its kiosk signs (ADR 0025): a stolen one
                # used from a phone is refused here.
                try:
                    body = await read_body(receive, body_limit) if has_body else b""
                except BodyTooLarge:
                    return route, await self._too_large(send, body_limit, path, request_id, cors)
                problem = await self._check_kiosk(method, path, scope, captured, body, forwarded,
                                                  device=verified.device)  # fmt: skip
                if problem is not None:
                    return route, await self._send_problem(send, problem, path, request_id, cors, "kiosk-token")
            wait = self.subject_limiter.hit(verified.subject, now)
            if wait:
                return route, await self._too_many(send, wait, path, request_id, cors, "rate-limit-subject")
            forwarded.extend(verified.headers)

        forwarded.append(("X-Request-Id", request_id))
        forwarded.append(("traceparent", _traceparent(captured.get(b"traceparent"), ids)))
        forwarded.append(("X-Forwarded-For", client_ip))
        forwarded.append(("X-Forwarded-Proto", scope.get("scheme", "http")))
        host = captured.get(b"host")
        if host:
            forwarded.append(("X-Forwarded-Host", host.decode("latin-1")))

        prefix_length = len("/api/v1/") + len(area)
        if raw_path is not None and raw_path[:prefix_length].decode("latin-1") == path[:prefix_length]:
            tail = raw_path[prefix_length:].decode("latin-1")
        else:
            tail = quote(rest)
        target = tail  # after the replica's URL, chosen by the forwarder
        query = scope.get("query_string")
        if query:
            target += "?" + query.decode("latin-1")

        timeout = self._timeout(
            rule.timeout_seconds if rule is not None and rule.timeout_seconds else settings.read_timeout_seconds
        )
        assert self.forwarder is not None, "gateway not started (lifespan)"
        response_extra = [(b"x-request-id", request_id.encode()), *cors]
        try:
            status = await self.forwarder.forward(
                method=method,
                upstream=upstream,
                target=target,
                headers=forwarded,
                receive=receive,
                send=send,
                body=body,
                has_body=has_body and body is None,
                body_limit=body_limit,
                timeout=timeout,
                extra_response_headers=response_extra,
                public_path=path,
                request_id=request_id,
            )
        except BodyTooLarge:
            return route, await self._too_large(send, body_limit, path, request_id, cors)
        except Problem as problem:
            log.warning("upstream failed", area=area, status=problem.status, detail=problem.detail, path=path)
            return route, await self._send_problem(send, problem, path, request_id, cors, f"upstream-{problem.status}")
        return route, status

    async def _try_token(self, authorization: bytes) -> _Verified | None:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            return await self.verify_token(token.strip())
        except InvalidToken:
            return None

    async def _check_signed(
        self,
        method: str,
        path: str,
        scope: dict[str, Any],
        captured: dict[bytes, bytes],
        body: bytes,
        forwarded: list[tuple[str, str]],
    ) -> Problem | None:
        headers, signed_path, query = _signed_parts(path, scope, captured)
        try:
            partner_id, nonce = check_signature(
                self.partners,
                method=method,
                path=signed_path,
                query=query,
                headers=headers,
                body=body,
                now=time.time(),
                max_age=self.settings.signature_max_age_seconds,
            )
        except SignatureRejected as rejected:
            log.warning("signed request refused", reason=rejected.reason, path=path)
            return Problem(401, "bad-signature", "Signature not accepted", rejected.detail, reason=rejected.reason)
        # Only a correctly signed request spends its nonce, so nobody can burn a partner's nonces.
        if not await self.nonces.claim(f"{partner_id}:{nonce}", 2 * self.settings.signature_max_age_seconds):
            log.warning("signed request replayed", partner=partner_id, path=path)
            return Problem(401, "bad-signature", "Signature not accepted", "nonce already used", reason="replay")
        forwarded.append(("X-Partner-Id", partner_id))
        return None

    async def _check_kiosk(
        self,
        method: str,
        path: str,
        scope: dict[str, Any],
        captured: dict[bytes, bytes],
        body: bytes,
        forwarded: list[tuple[str, str]],
        *,
        device: str | None,
    ) -> Problem | None:
        """A request signed by a registered, active kiosk — by ``device`` when given (the kiosk a
        kiosk token names). On success its nonce is spent and the verified device is forwarded as
        ``X-Kiosk-Device`` (logs), and for the card read also as ``X-Partner-Id`` (identity checks
        the signature again)."""
        headers, signed_path, query = _signed_parts(path, scope, captured)
        kiosks = self.kiosk_directory.kiosks
        if device is not None:
            kiosks = {device: kiosks[device]} if device in kiosks else {}
        try:
            device_id, nonce = verify_request(
                kiosks, method=method, path=signed_path, query=query, headers=headers, body=body,
                now=time.time(), max_age=self.settings.signature_max_age_seconds,
            )  # fmt: skip
        except SignatureRejected as rejected:
            log.warning("kiosk request refused", reason=rejected.reason, path=path, token=device is not None)
            if device is not None:
                return Problem(
                    401, "kiosk-signature-required", "Kiosk signature required",
                    "a token made at a kiosk is accepted only on requests signed by that kiosk "
                    f"({rejected.detail.replace('partner', 'kiosk')})", reason=rejected.reason,
                )  # fmt: skip
            reason = "unknown-device" if rejected.reason == "unknown-partner" else rejected.reason
            return Problem(401, "bad-signature", "Signature not accepted",
                           rejected.detail.replace("partner", "kiosk"), reason=reason)  # fmt: skip
        if not await self.nonces.claim(f"kiosk:{device_id}:{nonce}", 2 * self.settings.signature_max_age_seconds):
            log.warning("kiosk request replayed", device=device_id, path=path)
            return Problem(401, "bad-signature", "Signature not accepted", "nonce already used", reason="replay")
        if device is None:  # the card read itself: identity verifies the signature again with it
            forwarded.append(("X-Partner-Id", device_id))
        forwarded.append(("X-Kiosk-Device", device_id))
        return None

    async def _too_many(self, send: Send, wait: float, path: str, request_id: str, cors: list, reason: str) -> int:
        problem = Problem(
            429, "rate-limited", "Too many requests", f"slow down; retry in {int(wait)} s",
            headers={"Retry-After": str(int(wait))},
        )  # fmt: skip
        return await self._send_problem(send, problem, path, request_id, cors, reason)

    async def _too_large(self, send: Send, limit: int, path: str, request_id: str, cors: list) -> int:
        problem = Problem(413, "body-too-large", "Request body too large", f"at most {limit} bytes", limit=limit)
        return await self._send_problem(send, problem, path, request_id, cors, "body-too-large")

    # ---------------------------------------------------------------- readiness, OpenAPI

    def _services(self) -> dict[tuple[str, ...], str]:
        """Each service (its replicas' origins) → first area served there (areas may share one)."""
        services: dict[tuple[str, ...], str] = {}
        for area, upstream in self.upstreams.items():
            services.setdefault(upstream.origins, area)
        return services

    async def readiness(self) -> tuple[int, dict[str, Any]]:
        """Every replica's /readyz, asked at once; 503 while a service has no ready replica.

        One replica down leaves the gateway ready (the others take its requests, ADR 0032); it is
        named under ``replicas_down``."""
        assert self.session is not None
        timeout = aiohttp.ClientTimeout(total=self.settings.readiness_timeout_seconds)

        async def check(origin: str) -> str:
            try:
                async with self.session.get(origin + "/readyz", timeout=timeout) as response:
                    return "ok" if response.status == 200 else f"failed: HTTP {response.status}"
            except Exception as exc:
                return f"failed: {type(exc).__name__}"

        if not self.verifier.keys:
            # Not loaded at startup (identity came later) and no token asked since: try now.
            try:
                self.verifier.keys = await asyncio.wait_for(self._fetch_jwks(), self.settings.readiness_timeout_seconds)
            except Exception:
                pass
        services = self._services()
        origins = list(dict.fromkeys(origin for replicas in services for origin in replicas))
        answers = dict(zip(origins, await asyncio.gather(*(check(o) for o in origins)), strict=True))
        checks: dict[str, str] = {}
        replicas_down: dict[str, str] = {}
        for replicas, area in services.items():
            checks[area] = "ok" if any(answers[o] == "ok" for o in replicas) else answers[replicas[0]]
            if len(replicas) > 1:
                replicas_down.update((o, answers[o]) for o in replicas if answers[o] != "ok")
        checks["jwks"] = "ok" if self.verifier.keys else "failed: no signing keys"
        if self.following_revocations:
            # Not ready before the recent revocations were read once; NATS going away later does
            # not make the gateway unready (fail open, ADR 0010; the feed's gauge and log say it).
            feed = self.revocation_feed
            checks["revocations"] = "ok" if feed is not None and feed.synced else "failed: not read yet"
        ready = all(r == "ok" for r in checks.values())
        body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": checks}
        if replicas_down:
            body["replicas_down"] = replicas_down
        return (200 if ready else 503), body

    async def openapi_document(self) -> bytes:
        """The merged OpenAPI of every service (cached for ``openapi_cache_seconds``)."""
        cached = self._openapi_cache
        if cached is not None and time.monotonic() - cached[0] < self.settings.openapi_cache_seconds:
            return cached[1]
        async with self._openapi_lock:
            cached = self._openapi_cache
            if cached is not None and time.monotonic() - cached[0] < self.settings.openapi_cache_seconds:
                return cached[1]
            assert self.session is not None
            timeout = aiohttp.ClientTimeout(total=self.settings.readiness_timeout_seconds * 3)

            async def fetch(replicas: tuple[str, ...]) -> dict[str, Any] | None:
                """The service's document from the first replica that gives it (they serve the same)."""
                for origin in replicas:
                    try:
                        async with self.session.get(origin + "/openapi.json", timeout=timeout) as response:
                            if response.status == 200:
                                return await response.json(content_type=None)
                    except Exception:
                        continue
                return None

            services = list(self._services())
            fetched = await asyncio.gather(*(fetch(replicas) for replicas in services))
            # A document is known by its service's first replica.
            documents = {replicas[0]: document for replicas, document in zip(services, fetched, strict=True)}
            sources = [AreaSource(u.area, u.origins[0], u.prefix) for u in self.upstreams.values()]
            merged = merge_openapi(sources, documents, self.routes.match)
            body = json.dumps(merged, ensure_ascii=False).encode()
            self._openapi_cache = (time.monotonic(), body)
            return body


def create_app(settings: GatewaySettings | None = None, **options: Any) -> Gateway:
    """The app factory uvicorn calls (``--factory``)."""
    return Gateway(settings or GatewaySettings(), **options)
