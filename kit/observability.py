"""Request ids, Prometheus metrics and the health endpoints, as pure ASGI middleware."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.responses import JSONResponse, Response

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def sane_request_id(value: str | None) -> str:
    """Keep a caller's request id only if it is short and harmless; otherwise make one."""
    if value and _SANE_REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


class Metrics:
    """One registry per app so tests that build several apps do not collide."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total", "HTTP requests", ["service", "method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.service = service
        # The labelled series of each (method, route, status): labels() costs a lock and a tuple
        # per call, twice per request; a route template set is small and fixed.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request: counted by status, timed by route."""
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series[(method, route, status)] = (
                self.requests.labels(self.service, method, route, status),
                self.latency.labels(self.service, method, route),
            )
        series[0].inc()
        series[1].observe(seconds)


class RequestContextMiddleware:
    """Sets X-Request-Id, binds it to the log context, counts and times every request."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = sane_request_id(given)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        status_holder = {"status": 500}
        started = time.perf_counter()

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.record(scope["method"], template, status_holder["status"], time.perf_counter() - started)
            structlog.contextvars.unbind_contextvars("request_id")


ReadinessCheck = Callable[[], Awaitable[None]]


def health_router(metrics: Metrics, checks: Mapping[str, ReadinessCheck]) -> APIRouter:
    """/healthz (the process answers), /readyz (dependencies answer), /metrics (Prometheus)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz():
        results: dict[str, str] = {}
        ok = True
        for name, check in checks.items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:  # any failure means not ready; say which
                ok = False
                results[name] = f"failed: {type(exc).__name__}"
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": results}, status_code=200 if ok else 503
        )

    @router.get("/metrics")
    async def metrics_endpoint():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def install_observability(app: FastAPI, service: str, checks: Mapping[str, ReadinessCheck]) -> Metrics:
    metrics = Metrics(service)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.router.routes.extend(health_router(metrics, checks).routes)  # as kit.app.add_routes
    return metrics
