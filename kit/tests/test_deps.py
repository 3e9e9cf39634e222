"""kit.deps.from_app_state: the one way a handler reaches its service's start-up context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from kit.deps import Settings, from_app_state
from kit.errors import install_problem_handlers
from kit.settings import ServiceSettings


@dataclass
class Widgets:
    greeting: str


widgets_of = from_app_state("widgets", Widgets)
WidgetContext = Annotated[Widgets, Depends(widgets_of)]


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/hello")
    async def hello(context: WidgetContext, settings: Settings) -> dict:
        return {"greeting": context.greeting, "service": settings.service_name}

    return app


async def get(app: FastAPI) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get("/hello")


async def test_the_context_and_settings_set_at_start_up_reach_the_handler():
    app = make_app()
    app.state.widgets = Widgets("你好")
    app.state.settings = ServiceSettings(service_name="widgets")
    response = await get(app)
    assert response.json() == {"greeting": "你好", "service": "widgets"}


async def test_before_start_up_a_request_gets_a_503_problem():
    response = await get(make_app())
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_wrong_object_on_app_state_is_a_programming_error():
    app = make_app()
    app.state.widgets = "not widgets"

    class Request:
        pass

    request = Request()
    request.app = app  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="app.state.widgets is a str"):
        widgets_of(request)  # type: ignore[arg-type]
