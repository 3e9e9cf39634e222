"""kit.pagination through a real FastAPI app: bounds from settings, problems naming the field."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query
from fastapi.openapi.utils import get_openapi
from pydantic import ValidationError

from kit.errors import Problem, install_problem_handlers
from kit.pagination import Page, PageParams, PageQuery, Pagination, page_size_problem
from kit.settings import ServiceSettings

ROWS = [f"row-{n}" for n in range(23)]


def make_app(max_page_size: int) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.settings = ServiceSettings(max_page_size=max_page_size)

    @app.get("/rows", response_model=Page[str])
    async def rows(pages: Pagination) -> dict:
        return pages.answer(len(ROWS), ROWS[pages.offset : pages.offset + pages.limit])

    return app


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=make_app(max_page_size=20))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def test_pages_walk_the_whole_list(client):
    seen = []
    for page in (1, 2, 3):
        body = (await client.get("/rows", params={"page": page, "page_size": 10})).json()
        assert (body["total"], body["page"], body["page_size"]) == (23, page, 10)
        seen += body["items"]
    assert seen == ROWS
    assert (await client.get("/rows", params={"page": 4, "page_size": 10})).json()["items"] == []


async def test_default_page(client):
    body = (await client.get("/rows")).json()
    assert (body["page"], body["page_size"], body["items"]) == (1, 20, ROWS[:20])


def test_a_limit_below_the_default_page_is_refused_at_start():
    with pytest.raises(ValueError, match="max_page_size"):
        ServiceSettings(max_page_size=10)


@pytest.mark.parametrize("size", ["21", str(2**70)])
async def test_a_page_larger_than_the_service_allows_is_a_problem_naming_page_size(client, size):
    response = await client.get("/rows", params={"page_size": size})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "query.page_size"
    assert "at most 20" in response.json()["detail"]


@pytest.mark.parametrize("params", [{"page": "0"}, {"page": "10001"}, {"page_size": "0"}, {"page": "x"}])
async def test_out_of_range_pages_are_problems(client, params):
    response = await client.get("/rows", params=params)
    assert response.status_code == 422
    field = next(iter(params))
    assert any(error["field"] == f"query.{field}" for error in response.json()["errors"])


def test_offset():
    assert PageQuery(page=3, page_size=7).offset == 14
    assert PageQuery().answer(0, []) == {"total": 0, "page": 1, "page_size": 20, "items": []}


def test_page_params_document_what_page_query_declares():
    async def declared(pages: Pagination) -> None: ...

    async def modelled(pages: Annotated[PageParams, Query()]) -> None: ...

    def parameters(endpoint) -> list:
        router = APIRouter()
        router.add_api_route("/rows", endpoint, methods=["GET"])
        return get_openapi(title="t", version="0", routes=router.routes)["paths"]["/rows"]["get"]["parameters"]

    assert parameters(modelled) == parameters(declared)
    assert [p["name"] for p in parameters(modelled)] == ["page", "page_size"]


def test_page_params_are_bounded_as_page_query_bounds_them():
    assert PageParams().bounded(20) == PageQuery(page=1, page_size=20)
    assert PageParams.model_validate({"page": "3", "page_size": "7"}).bounded(7).offset == 14
    with pytest.raises(Problem) as refused:
        PageParams(page_size=21).bounded(20)
    assert refused.value.body() == page_size_problem(20).body()
    assert refused.value.errors == [{"field": "query.page_size", "rule": "max", "message": "at most 20"}]
    for bad in ({"page": "0"}, {"page": "10001"}, {"page_size": "0"}, {"page": str(2**70)}):
        with pytest.raises(ValidationError):
            PageParams.model_validate(bad)
