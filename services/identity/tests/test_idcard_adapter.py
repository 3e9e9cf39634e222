"""The ID-card check adapters (身份证核验): the HTTP one against a real loopback service, the
sandbox's rules and its failures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kit.testing import serve
from services.identity.adapters.idcards import CardRead, HttpIdCardCheck, SandboxIdCardCheck
from services.identity.adapters.registry import CheckUnavailable

CARD = CardRead("110101194505060013", "刘老汉", date(2020, 1, 1), None, "A1B2")


def checking_service(answers: list) -> tuple[FastAPI, list[dict]]:
    seen: list[dict] = []
    app = FastAPI()

    @app.post("/check")
    async def check(request: Request):
        seen.append({"body": await request.json(), "key": request.headers.get("x-api-key")})
        status, body = answers.pop(0)
        return JSONResponse(body, status_code=status)

    return app, seen


async def test_the_http_check_sends_the_card_read_and_reads_the_answer():
    app, seen = checking_service([
        (200, {"passed": True}),
        (200, {"passed": False, "rule": "card_reported_lost", "reason": "挂失"}),
        (200, {"passed": "yes"}),
        (500, {"error": "down"}),
    ])  # fmt: skip
    async with serve(app) as url:
        check = HttpIdCardCheck(url + "/check", "api-key-1", timeout=2)
        assert (await check.check(CARD)).passed
        refused = await check.check(CARD)
        assert (refused.passed, refused.rule, refused.reason) == (False, "card_reported_lost", "挂失")
        for _ in range(2):  # a malformed answer and a server error are the service being unavailable
            with pytest.raises(CheckUnavailable):
                await check.check(CARD)
    assert seen[0] == {
        "body": {"id_number": CARD.id_number, "name": "刘老汉", "valid_from": "2020-01-01", "valid_until": None,
                 "card_serial": "A1B2"},
        "key": "api-key-1",
    }  # fmt: skip


async def test_the_http_check_unreachable_is_unavailable():
    with pytest.raises(CheckUnavailable):
        await HttpIdCardCheck("http://127.0.0.1:9/check", "k", timeout=0.5).check(CARD)


async def test_the_sandbox_refuses_an_expired_card_on_beijings_date():
    # 2026-03-31 16:30 UTC is already 1 April in Beijing: a card valid until 31 March has expired.
    sandbox = SandboxIdCardCheck(delay_ms=0, clock=lambda: datetime(2026, 3, 31, 16, 30, tzinfo=UTC))
    expired = await sandbox.check(CardRead(CARD.id_number, CARD.name, date(2016, 3, 31), date(2026, 3, 31)))
    assert (expired.passed, expired.rule) == (False, "card_expired")
    valid = await sandbox.check(CardRead(CARD.id_number, CARD.name, date(2016, 4, 1), date(2026, 4, 1)))
    assert valid.passed


async def test_the_sandbox_fails_now_and_then_like_the_real_service():
    sandbox = SandboxIdCardCheck(delay_ms=0, failure_rate=1.0)
    with pytest.raises(CheckUnavailable):
        await sandbox.check(CARD)
