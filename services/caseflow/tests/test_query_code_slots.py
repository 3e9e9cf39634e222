"""The query-code window as the public progress page leaves it (cases/query_codes.py): a right code
in a window that has not ended writes nothing (on PostgreSQL not even a new row version), and the
window is what the upsert made of it before — started by the first try at a case number, right or
wrong, counted by wrong ones, started again by the first try after it ended — on both databases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text

from services.caseflow.models import QueryCodeAttempt
from services.caseflow.tests.conftest import submit


async def window(client, case_no: str) -> tuple[int, object] | None:
    async with client.app.state.sessionmaker() as session:
        row = (await session.execute(
            select(QueryCodeAttempt.attempts, QueryCodeAttempt.window_start).where(QueryCodeAttempt.case_no == case_no)
        )).one_or_none()  # fmt: skip
        return None if row is None else (row.attempts, row.window_start)


async def row_version(client, case_no: str) -> str | None:
    """PostgreSQL's xmin of the case number's row: a new one for every row version written."""
    if client.app.state.driver.dialect.name != "postgresql":
        return None
    async with client.app.state.sessionmaker() as session:
        return (await session.execute(
            text("SELECT xmin::text FROM query_code_attempts WHERE case_no = :n"), {"n": case_no}
        )).scalar_one()  # fmt: skip


async def test_a_right_code_in_a_live_window_writes_nothing_and_reads_the_count(caseflow):
    caseflow.app.state.caseflow.settings.query_code_attempts = 3
    case = await submit(caseflow)
    url, right = f"/progress/{case['case_no']}", {"code": case["query_code"]}
    assert await window(caseflow, case["case_no"]) is None
    assert (await caseflow.get(url, params=right)).status_code == 200
    started = await window(caseflow, case["case_no"])
    assert started is not None and started[0] == 0  # the first try starts the window, right or wrong
    caseflow.clock.value += timedelta(minutes=5)
    version = await row_version(caseflow, case["case_no"])
    for _ in range(3):
        assert (await caseflow.get(url, params=right)).status_code == 200
    assert await window(caseflow, case["case_no"]) == started
    assert await row_version(caseflow, case["case_no"]) == version
    for _ in range(2):
        assert (await caseflow.get(url, params={"code": "ZZZZZZ"})).status_code == 404
    assert await window(caseflow, case["case_no"]) == (2, started[1])
    version = await row_version(caseflow, case["case_no"])
    assert (await caseflow.get(url, params=right)).status_code == 200  # 2 wrong + this one: within 3
    assert await row_version(caseflow, case["case_no"]) == version
    assert (await caseflow.get(url, params={"code": "ZZZZZZ"})).status_code == 404
    refused = await caseflow.get(url, params=right)  # 3 wrong + this one: past the limit
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) == (
        caseflow.app.state.caseflow.settings.query_code_window_seconds - 5 * 60
    )
    assert await window(caseflow, case["case_no"]) == (3, started[1])


async def test_the_first_try_after_the_window_starts_it_again(caseflow):
    case = await submit(caseflow)
    url, right = f"/progress/{case['case_no']}", {"code": case["query_code"]}
    assert (await caseflow.get(url, params={"code": "ZZZZZZ"})).status_code == 404
    first = await window(caseflow, case["case_no"])
    assert first is not None and first[0] == 1
    caseflow.clock.value += timedelta(seconds=caseflow.app.state.caseflow.settings.query_code_window_seconds + 1)
    assert (await caseflow.get(url, params=right)).status_code == 200
    again = await window(caseflow, case["case_no"])
    assert again is not None and again[0] == 0 and again[1] > first[1]
    unknown = "YW" + "0" * 14
    assert (await caseflow.get(f"/progress/{unknown}", params=right)).status_code == 404
