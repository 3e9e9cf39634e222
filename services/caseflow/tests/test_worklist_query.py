"""``GET /worklist`` reads its query string itself (api/query_models.py, issue 15): the same contract
as when FastAPI solved its six declared parameters — the same OpenAPI parameters, the same answers
for filters and pages, the same 422 problems for bad values (field and rule), on both databases.

The reference is the route as it was declared before, mounted beside it in the same app."""

from __future__ import annotations

import inspect
from datetime import UTC, date, datetime
from typing import Annotated

import pytest
from fastapi import APIRouter, Query, Request, Response
from fastapi.openapi.utils import get_openapi
from sqlalchemy import select, update

from kit.deps import Caller, Db
from kit.pagination import Pagination
from kit.responses import json_answer
from services.caseflow.api import query_models
from services.caseflow.api.routes import States, WorklistFilters, context
from services.caseflow.cases import reading
from services.caseflow.models import Case
from services.caseflow.schemas import Worklist
from services.caseflow.tests.conftest import act, officer, person, submit

ACCEPTOR = officer("acceptor")


async def declared_worklist(
    request: Request,
    db: Db,
    caller: Caller,
    pages: Pagination,
    state: States | None = None,
    matter_code: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool = False,
    due_before: date | None = None,
) -> Response:
    """The worklist route as declared before (each parameter solved by FastAPI)."""
    return json_answer(await reading.worklist(
        db, caller, state=state, matter_code=matter_code,
        overdue_on=context(request).today() if overdue else None, due_before=due_before, pages=pages,
    ))  # fmt: skip


def with_reference(client) -> None:
    client.app.router.add_api_route("/reference/worklist", declared_worklist, methods=["GET"], response_model=Worklist)


def test_the_openapi_parameters_are_those_of_the_declared_route():
    router = APIRouter()
    router.add_api_route("/worklist", declared_worklist, methods=["GET"], response_model=Worklist)
    declared = get_openapi(title="t", version="0", routes=router.routes)["paths"]["/worklist"]["get"]["parameters"]
    from services.caseflow.api.routes import router as caseflow_router

    route = next(r for r in caseflow_router.routes if getattr(r, "path", None) == "/worklist")
    assert route.openapi_extra["parameters"] == declared
    assert [p["name"] for p in declared] == ["state", "matter_code", "overdue", "due_before", "page", "page_size"]


async def test_the_answers_are_those_of_the_declared_route(caseflow):
    with_reference(caseflow)
    waiting = [await submit(caseflow) for _ in range(3)]
    await act(caseflow, waiting[0], ACCEPTOR, "accept")
    queries = [
        {}, {"page": "1", "page_size": "2"}, {"page": "2", "page_size": "2"}, {"page": "9", "page_size": "2"},
        {"state": "submitted"}, {"state": "accepted"}, {"matter_code": "SCJG-001"}, {"matter_code": "NONE"},
        {"overdue": "true"}, {"overdue": "0"}, {"due_before": "2030-01-01"}, {"due_before": "2020-01-01"},
        [("state", "accepted"), ("state", "submitted")], {"unknown": "x", "page_size": "1"},
    ]  # fmt: skip
    for headers in (ACCEPTOR, officer("reviewer"), officer("supervisor", "JCZX")):
        for query in queries:
            new = await caseflow.get("/worklist", params=query, headers=headers)
            old = await caseflow.get("/reference/worklist", params=query, headers=headers)
            assert new.status_code == old.status_code == 200, (query, new.text)
            assert new.json() == old.json(), query
    assert len((await caseflow.get("/worklist", params={"page_size": 2}, headers=ACCEPTOR)).json()["items"]) == 2


BAD_QUERIES = [
    {"page": "0"}, {"page": "10001"}, {"page": "x"}, {"page": ""}, {"page": str(2**70)}, {"page": "1.5"},
    {"page_size": "0"}, {"page_size": "101"}, {"page_size": str(2**70)}, {"page_size": "-1"},
    {"state": "nonsense"}, {"state": ""}, {"state": "\u202e"}, {"matter_code": "x" * 65},
    {"overdue": "maybe"}, {"overdue": ""}, {"due_before": "2026-13-01"}, {"due_before": "tomorrow"},
    {"due_before": "9" * 30},
    # several at once: the page's first, then the filters' in order; a page size above the limit alone
    {"page": "0", "state": "nonsense", "due_before": "x", "overdue": "x", "matter_code": "x" * 65},
    {"page_size": "101", "state": "nonsense"}, {"page_size": "0", "page": "0", "state": "nonsense"},
    [("state", "submitted"), ("state", "nonsense")], [("page", "2"), ("page", "x")],
]  # fmt: skip


@pytest.mark.parametrize("query", BAD_QUERIES, ids=repr)
async def test_bad_values_are_the_declared_routes_problems(caseflow, query):
    with_reference(caseflow)
    new = await caseflow.get("/worklist", params=query, headers=ACCEPTOR)
    old = await caseflow.get("/reference/worklist", params=query, headers=ACCEPTOR)
    assert new.status_code == old.status_code == 422, (new.text, old.text)
    assert new.headers["content-type"] == old.headers["content-type"] == "application/problem+json"
    body, reference = new.json(), old.json()
    assert body.pop("instance") == "/worklist" and reference.pop("instance") == "/reference/worklist"
    body.pop("request_id", None)
    reference.pop("request_id", None)
    assert body == reference
    assert body["errors"] and all(error["field"].startswith("query.") for error in body["errors"])


async def test_a_problem_before_the_query_is_read_comes_first(caseflow):
    with_reference(caseflow)
    for headers, status in (({}, 401), (person(), 403)):
        for query in ({"page": "0"}, {}):
            new = await caseflow.get("/worklist", params=query, headers=headers)
            old = await caseflow.get("/reference/worklist", params=query, headers=headers)
            expected = status if status == 401 or not query else 422
            assert new.status_code == old.status_code == expected, (headers, query, new.text)


def test_read_reports_errors_as_fastapi_locates_them():
    from starlette.requests import Request as StarletteRequest

    request = StarletteRequest({"type": "http", "query_string": b"state=x&overdue=maybe&due_before=2026-01-01"})
    errors: list = []
    assert query_models.read(WorklistFilters, request, errors) is None
    assert [(e["loc"], e["type"]) for e in errors] == [
        (("query", "state"), "literal_error"), (("query", "overdue"), "bool_parsing"),
    ]  # fmt: skip
    fine = StarletteRequest({"type": "http", "query_string": b"due_before=2026-01-01&other=1"})
    assert query_models.read(WorklistFilters, fine, errors) == WorklistFilters(due_before=date(2026, 1, 1))


async def test_the_items_are_the_orm_cases_summaries(caseflow):
    """The worklist's items (built from the driver's rows by key) are ``summary_out`` of the ORM's
    cases, including a case without a deadline or clock step and a timestamp without microseconds."""
    cases = [await submit(caseflow) for _ in range(3)]
    await act(caseflow, cases[0], ACCEPTOR, "accept")
    async with caseflow.app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Case).where(Case.case_no == cases[1]["case_no"])
            .values(due_on=None, clock_step=None, updated_at=datetime(2026, 11, 2, 2, 0, tzinfo=UTC))
        )  # fmt: skip
    answer = await caseflow.get("/worklist", headers=officer("supervisor", "JCZX"))
    items = {item["case_no"]: item for item in answer.json()["items"]}
    assert set(items) == {case["case_no"] for case in cases}
    async with caseflow.app.state.sessionmaker() as session:
        for case in (await session.execute(select(Case))).scalars():
            assert items[case.case_no] == reading.summary_out(case), case.case_no
    assert items[cases[1]["case_no"]]["due_on"] is None
    assert items[cases[1]["case_no"]]["updated_at"] == "2026-11-02T02:00:00+00:00"


def test_the_summary_takes_the_summary_columns_in_order():
    parameters = list(inspect.signature(reading._summary).parameters)
    assert parameters == [column.key for column in reading.SUMMARY_COLUMNS]
