"""Builds a service's FastAPI app: problems, logs, health, db, bus, outbox relay, consumers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from kit.auth import KeyFetcher, TokenVerifier, http_jwks_fetcher
from kit.bodyguard import JsonBodyGuard
from kit.bus import Bus, stream_name_for
from kit.consumer import EventConsumer
from kit.db import async_database_url, is_sqlite, make_engine, make_sessionmaker, read_engine
from kit.driver import Driver
from kit.errors import install_problem_handlers
from kit.logs import configure_logging
from kit.observability import install_observability
from kit.openapi import document_problems
from kit.outbox import Outbox, OutboxRelay
from kit.revocation import RevocationFeed, RevocationList, register_revocation_metrics
from kit.settings import ServiceSettings

ConsumerFactory = Callable[[FastAPI], list[EventConsumer]]


@dataclass
class ServiceParts:
    """What a service hands to the kit; everything else is the same for all services."""

    settings: ServiceSettings
    title: str
    routers: list[APIRouter]
    outbox: Outbox | None = None
    consumers: ConsumerFactory | None = None
    key_fetcher: Callable[[FastAPI], KeyFetcher] | None = None
    on_startup: list[Callable[[FastAPI], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[FastAPI], Awaitable[None]]] = field(default_factory=list)


def create_service_app(parts: ServiceParts) -> FastAPI:
    settings = parts.settings
    name = settings.service_name
    revocations = RevocationList()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(name, settings.log_level, settings.log_json)
        engine = make_engine(settings.resolved_database_url())
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.read_engine = read_engine(engine)  # kit.deps.ReadConnection and ReadSession
        app.state.read_sessionmaker = async_sessionmaker(app.state.read_engine, expire_on_commit=False)
        driver = Driver(engine, pool_size=settings.driver_pool_size)  # kit.deps.Db: hot paths (ADR 0036)
        await driver.start()
        app.state.driver = driver
        # The relay and the consumers get a pool of their own: under a burst of requests every
        # request queues for a connection, and a consumer queued behind them fell a minute behind
        # (docs/benchmarks.md, Approve → shipment). Same session class: its commits wake the relay.
        url = settings.resolved_database_url()
        pool = (
            {}
            if is_sqlite(async_database_url(url))
            else {"pool_size": settings.background_pool_size, "max_overflow": 0}
        )
        background_engine = make_engine(url, **pool)
        app.state.background_sessionmaker = async_sessionmaker(
            background_engine,
            expire_on_commit=False,
            sync_session_class=app.state.sessionmaker.kw["sync_session_class"],
        )
        fetcher = parts.key_fetcher(app) if parts.key_fetcher else http_jwks_fetcher(settings.jwks_url)
        app.state.token_verifier = TokenVerifier(
            fetcher, issuer=settings.token_issuer, audience=settings.token_audience, revocations=revocations
        )
        bus = Bus(
            settings.nats_url,
            name=name,
            streams={stream_name_for(name): [f"{name}.>"]},
            stream_replicas=settings.nats_stream_replicas,
        )
        app.state.bus = bus
        background: list = []
        if settings.nats_enabled:
            await bus.start()
            # Every process follows the revocations itself (ADR 0010), identity included.
            feed = RevocationFeed(bus, revocations, replay_seconds=settings.access_token_max_ttl_seconds)
            app.state.revocation_feed = feed
            background.append(feed)
            if parts.outbox is not None:
                relay = OutboxRelay(
                    app.state.background_sessionmaker,
                    parts.outbox,
                    bus,
                    batch_size=settings.relay_batch_size,
                    max_backoff=settings.relay_max_backoff_seconds,
                    linger=settings.relay_linger_seconds,
                )
                app.state.relay = relay
                driver.on_commit.append(relay.after_driver_commit)
                background.append(relay)
            if parts.consumers is not None:
                background.extend(parts.consumers(app))
        for hook in parts.on_startup:
            await hook(app)
        for task in background:
            await task.start()
        try:
            yield
        finally:
            for task in reversed(background):
                await task.stop()
            for hook in parts.on_shutdown:
                await hook(app)
            await bus.close()
            await driver.close()
            await engine.dispose()
            await background_engine.dispose()

    app = FastAPI(title=parts.title, lifespan=lifespan, version="1")
    app.state.settings = settings  # what kit dependencies read (kit.pagination, kit.deps)
    install_problem_handlers(app)
    # Inside the request-context middleware (added below, so outermost): refusals carry the request id.
    app.add_middleware(JsonBodyGuard, max_depth=settings.json_max_depth)

    async def database_ready() -> None:
        async with app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    checks = {"database": database_ready}
    if settings.nats_enabled:

        async def nats_ready() -> None:
            await app.state.bus.check()

        checks["nats"] = nats_ready

        async def revocations_ready() -> None:
            # Not before the recent revocations were read once; afterwards NATS going away does not
            # make the service unready for this (fail open, ADR 0010; the nats check says it).
            feed = getattr(app.state, "revocation_feed", None)
            if feed is None or not feed.synced:
                raise RuntimeError("revocations not read yet")

        checks["revocations"] = revocations_ready
    metrics = install_observability(app, name, checks)
    app.state.revocations = revocations
    register_revocation_metrics(metrics.registry, revocations, lambda: getattr(app.state, "revocation_feed", None))
    for router in parts.routers:
        add_routes(app, router)
    document_problems(app)
    return app


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """The router's routes on the app itself, as ``include_router`` without a prefix would put
    them (each route already carries its router's prefix and responses). FastAPI 0.165 keeps an
    included router as a layer of its own, matched and then matched again to dispatch: a 401 from
    caseflow's ``/worklist`` made 35 % more Python calls that way (issue 15, ADR 0036). Both ways
    give the same OpenAPI document for every service (``tests/api/test_app_routes.py``)."""
    app.router.routes.extend(router.routes)
