"""Hall under test: migrated database (SQLite, and PostgreSQL when TEST_POSTGRES_URL is set), own
NATS, the app's lifespan, an HTTP client, a clock the test moves, the sandbox SMS gateway, the
chinesecalendar calendar, and tokens signed as identity signs them (kit.testing.TokenSigner)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kit.migrate import upgrade
from kit.testing import TokenSigner, bearer
from services.hall.adapters.calendar import LocalCalendar
from services.hall.adapters.sms import SandboxSms
from services.hall.background import NoShowMarker, SmsDispatcher
from services.hall.main import create_app
from services.hall.models import outbox
from services.hall.settings import Settings

TOKENS = TokenSigner()
DAUGHTER = "11010519491231002X"  # GB 11643's published example
FATHER = "110105194912310038"
STRANGER = "110101199003070011"
# Tuesday 2026-12-01, 08:30 in China: the next working day is Wednesday the 2nd.
START = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
HALL = "HALL-371402"
MOBILE = "13800138000"


def china(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    """A moment in December 2026 (or ``month``), China time, as UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def person(subject: str = DAUGHTER, **claims: Any) -> dict[str, str]:
    return bearer(TOKENS.token(**{"sub": subject, "kind": "person", "lvl": 2, **claims}))


def kiosk(subject: str = FATHER, device: str = "KIOSK-01") -> dict[str, str]:
    return bearer(TOKENS.token(sub=subject, kind="person", lvl=2, chn="kiosk", dev=device))


def officer(department: str = "ZWFW", *roles: str, login: str = "liu") -> dict[str, str]:
    return bearer(TOKENS.officer_token(f"{login}.{department.lower()}", roles=roles or ("counter",),
                                       department=department))  # fmt: skip


ADMIN = officer("ADMIN", "admin", login="root")
COUNTER = officer("ZWFW", "counter", login="wang")


class TestClock:
    def __init__(self) -> None:
        self.value = START

    def set(self, value: datetime) -> None:
        self.value = value

    def __call__(self) -> datetime:
        return self.value


def settings_for(database_url: str, nats_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=database_url, nats_url=nats_url, log_json=False, log_level="WARNING", sandbox=True,
        sms_enabled=False, no_show_enabled=False, code_secret="test-code-secret",
    )  # fmt: skip
    values.update(changes)
    return Settings(**values)


HALL_BODY = {
    "name": "德城区政务服务中心", "division_code": "371402", "address": "山东省德州市德城区东方红路1号",
    "queue_prefix": "A", "opening_hours": ["09:00-12:00", "13:30-17:00"], "slot_minutes": 30, "slot_capacity": 5,
}  # fmt: skip


async def make_hall(client: httpx.AsyncClient, code: str = HALL, **changes: Any) -> None:
    response = await client.put(f"/halls/{code}", json={**HALL_BODY, **changes}, headers=ADMIN)
    assert response.status_code in {200, 201}, response.text
    for window, body in (
        ("A1", {"name": "综合受理一号窗口", "comprehensive": True}),
        ("A2", {"name": "综合受理二号窗口", "comprehensive": True}),
        ("B1", {"name": "不动产登记窗口", "department": "BDCDJ", "matters": ["BDCDJ-QR-0002"]}),
    ):
        response = await client.put(f"/halls/{code}/windows/{window}", json=body, headers=ADMIN)
        assert response.status_code in {200, 201}, response.text


@pytest.fixture
async def hall(database_url, nats_server):
    """An httpx client on a running hall app with the demo-like hall HALL-371402 (capacity 5)."""
    await asyncio.to_thread(upgrade, "services.hall", database_url)
    sms = SandboxSms()
    settings = settings_for(database_url, nats_server.url)
    app = create_app(settings, key_fetcher=TOKENS.fetch_keys, calendar=LocalCalendar(), sms=sms)
    async with app.router.lifespan_context(app):
        clock = TestClock()
        app.state.hall.now = clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hall") as client:
            client.app = app
            client.clock = clock
            client.sms = sms
            client.dispatcher = SmsDispatcher(app.state.sessionmaker, sms, settings, clock=clock)
            client.no_shows = NoShowMarker(app.state.sessionmaker, settings, clock=clock)
            await make_hall(client)
            yield client


def booking_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"hall_code": HALL, "matter_code": "GAJ-XK-0002",
                            "starts_at": china(2, 10, 30).isoformat(), "mobile": MOBILE}  # fmt: skip
    body.update(changes)
    return body


async def book(client: httpx.AsyncClient, headers: dict[str, str] | None = None, **changes: Any) -> httpx.Response:
    return await client.post("/bookings", json=booking_body(**changes), headers=headers or person())


async def code_sent(client: httpx.AsyncClient, mobile: str = MOBILE) -> str:
    """Send what waits, then read the newest code from the sandbox page, as a test user would."""
    await client.dispatcher.batch()
    response = await client.get("/sandbox/sms", params={"mobile": mobile})
    assert response.status_code == 200, response.text
    match = re.search(r"签到码(\d{6})", response.json()[0]["text"])
    assert match, response.json()[0]["text"]
    return match.group(1)


async def published(client: httpx.AsyncClient, suffix: str) -> list[dict[str, Any]]:
    async with client.app.state.sessionmaker() as session:
        rows = (await session.execute(select(outbox.table.c.event_type, outbox.table.c.payload)
                                      .order_by(outbox.table.c.id))).all()  # fmt: skip
    return [json.loads(p)["data"] for t, p in rows if t.endswith(suffix)]
