"""kit.app.add_routes puts a router's routes on the app as ``include_router`` would: every
service's OpenAPI document is the same either way, and a request reaches its route."""

from __future__ import annotations

import importlib

import httpx
import pytest

import kit.app

SERVICES = ["identity", "catalog", "caseflow", "licence", "express", "exchange", "hall", "payment"]


@pytest.mark.parametrize("service", SERVICES)
def test_the_openapi_document_is_the_one_include_router_gives(service, monkeypatch, tmp_path):
    prefix = service.upper()
    monkeypatch.setenv(f"{prefix}_NATS_ENABLED", "false")
    monkeypatch.setenv(f"{prefix}_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    main = importlib.import_module(f"services.{service}.main")
    flat = main.create_app().openapi()
    monkeypatch.setattr(kit.app, "add_routes", lambda app, router: app.include_router(router))
    included = main.create_app()
    assert any(type(route).__name__ == "_IncludedRouter" for route in included.routes)  # FastAPI's own way
    assert flat == included.openapi()
    assert len(flat["paths"]) >= 3


async def test_routes_answer_with_their_template_and_unknown_paths_are_404(monkeypatch, tmp_path):
    monkeypatch.setenv("CATALOG_NATS_ENABLED", "false")
    monkeypatch.setenv("CATALOG_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    from services.catalog.main import create_app

    app = create_app()
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/no/such/path")).status_code == 404
            assert (await client.delete("/healthz")).status_code == 405
            metrics = (await client.get("/metrics")).text
    assert 'route="/healthz"' in metrics and 'route="unmatched"' in metrics
