"""Caseflow under test: migrated database, own NATS, the app's lifespan, an HTTP client, a clock
the test sets, matters stored as catalog would announce them, and tokens signed with a test key
exactly as identity would sign them (docs/adr/0002-token-claims.md)."""

from __future__ import annotations

import asyncio
import itertools
import time
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from contracts.events.catalog import MatterPublished
from kit.migrate import upgrade
from kit.testing import TokenSigner, bearer
from services.caseflow import matters
from services.caseflow.adapters.licences import SandboxLicences
from services.caseflow.main import create_app
from services.caseflow.settings import Settings

SIGNER = TokenSigner()
fetch_keys = SIGNER.fetch_keys
CHINA = timezone(timedelta(hours=8))
ZHANG_SAN = "11010519491231002X"
LI_SI = "110105194912310037"
COMPANY = "91350100M000100Y43"

# Verified names as identity puts them in tokens (ADR 0002 amendment).
NAMES = {ZHANG_SAN: "张三", LI_SI: "李四", COMPANY: "淮安某某餐饮有限公司"}
_DEFAULT = object()


def token(subject: str, *, kind: str = "person", level: int = 2, actor: str | None = None,
          scope: str | None = None, roles: tuple[str, ...] = (), department: str | None = None,
          name: Any = _DEFAULT, actor_name: Any = _DEFAULT) -> str:  # fmt: skip
    """A token as identity signs it; ``name``/``actor_name`` default to the subject's verified name
    (``None``: a token from before names, without the claim)."""
    claims: dict[str, Any] = {"sub": subject, "kind": kind, "lvl": level, "scope": scope}
    claims["name"] = NAMES.get(subject) if name is _DEFAULT else name
    if actor:
        actor_name = NAMES.get(actor) if actor_name is _DEFAULT else actor_name
        claims["act"] = {"sub": actor, **({"name": actor_name} if actor_name is not None else {})}
    if kind == "officer":
        claims["roles"] = list(roles)
        claims["dept"] = department
    return SIGNER.token(**claims)


def person(subject: str = ZHANG_SAN, level: int = 2) -> dict[str, str]:
    return bearer(token(subject, level=level))


def officer(role: str, department: str = "SCJGJ", *more: str) -> dict[str, str]:
    login = f"officer:{department.lower()}.{role}"
    return bearer(token(login, kind="officer", roles=(role, *more), department=department, level=3))


def matter_definition(code: str = "SCJG-001", **changes: Any) -> dict[str, Any]:
    """A licensing matter like 个体工商户设立登记: ID card from the e-licence library, a lease photo."""
    data: dict[str, Any] = {
        "code": code, "version": 1, "effective_from": "2026-01-01", "published_at": "2026-01-01T00:00:00Z",
        "published_by": "officer:scjgj.admin", "name": "个体工商户设立登记", "aliases": [], "keywords": [],
        "matter_type": "行政许可", "department": "SCJGJ", "level": "city", "division_code": "320802",
        "legal_basis": [], "conditions": [], "audience": ["person"], "themes": [],
        "materials": [
            {"name": "居民身份证", "required": True, "forms": ["electronic"], "count": 1,
             "licence_type": "resident_id_card"},
            {"name": "经营场所租赁合同", "required": True, "forms": ["copy"], "count": 1},
            {"name": "其他材料", "required": False, "forms": ["copy"], "count": 1},
        ],
        "statutory_limit_days": 20, "promised_limit_days": 3, "kind": "promised", "fees": [],
        "result": {"name": "营业执照", "form": "licence", "licence_type": "business_licence",
                   "delivery": ["window", "express"]},
        "depth": 4, "max_visits": 0, "online": True, "express": True, "min_level": 2,
        "steps": [
            {"name": "受理", "roles": ["acceptor"], "limit_days": 1},
            {"name": "审查", "roles": ["reviewer"], "limit_days": 1},
            {"name": "决定", "roles": ["decider"], "limit_days": 1},
        ],
        "form_fields": [{"name": "business_scope", "label": "经营范围", "kind": "text", "required": True}],
        "faq": [], "parallel_departments": [], "consult_phone": None, "window": None,
    }  # fmt: skip
    data.update(changes)
    return data


class TestClock:
    """The app's notion of now; tests move it."""

    def __init__(self, day: date) -> None:
        self.set(day)

    def set(self, day: date, hour: int = 10) -> None:
        self.value = datetime(day.year, day.month, day.day, hour, tzinfo=CHINA).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.value


@asynccontextmanager
async def running_caseflow(database_url: str, nats_url: str, tmp_path, **overrides: Any):
    """An httpx client on a running caseflow app (settings ``overrides``), with the test clock and
    the demo matter; ``client.clock`` sets today (default Mon 2026-11-02)."""
    await asyncio.to_thread(upgrade, "services.caseflow", database_url)
    settings = Settings(**{
        "database_url": database_url, "nats_url": nats_url, "log_json": False, "log_level": "WARNING",
        "supervision_enabled": False, "blob_dir": str(tmp_path / "blobs"), "sandbox": True, **overrides,
    })  # fmt: skip
    app = create_app(settings, key_fetcher=fetch_keys)
    async with app.router.lifespan_context(app):
        clock = TestClock(date(2026, 11, 2))
        app.state.caseflow.now = clock
        if isinstance(app.state.licences, SandboxLicences):
            register_licences(app.state.licences, clock)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://caseflow") as client:
            client.app = app
            client.clock = clock
            await add_matter(client, matter_definition())
            yield client


@pytest.fixture
async def caseflow(database_url, nats_server, tmp_path):
    """An httpx client on a running caseflow app (see ``running_caseflow``)."""
    async with running_caseflow(database_url, nats_server.url, tmp_path) as client:
        yield client


def register_licences(sandbox: SandboxLicences, clock: TestClock) -> None:
    """The e-licences the tests' applicants hold, in the sandbox licence service (ADR 0016)."""
    sandbox.today = lambda: clock().astimezone(CHINA).date()
    sandbox.register("LIC-ID-1", licence_type="resident_id_card", holder=ZHANG_SAN, number="11010519491231002X-ID")
    sandbox.register("L1", licence_type="resident_id_card", holder=ZHANG_SAN, number="ID-L1")
    sandbox.register("LIC-BL-1", licence_type="business_licence", holder=COMPANY, number="91350100M000100Y43")


async def add_matter(client: httpx.AsyncClient, data: dict[str, Any]) -> None:
    async with client.app.state.sessionmaker() as session, session.begin():
        await matters.store_published(session, MatterPublished.model_validate(data))


def submission(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "matter_code": "SCJG-001",
        "form": {"business_scope": "餐饮服务"},
        "materials": [
            {"name": "居民身份证", "licence_id": "LIC-ID-1", "licence_version": 1},
            {"name": "经营场所租赁合同", "blob_id": None, "licence_id": None},
        ],
        "delivery": {
            "method": "ems",
            "recipient": "张三",
            "phone": "13800138000",
            "address": "江苏省淮安市清江浦区1号",
        },
    }
    body.update(changes)
    return body


async def upload(client: httpx.AsyncClient, headers: dict[str, str], content: bytes | None = None) -> str:
    content = content or b"\xff\xd8\xff\xe0" + b"\x00" * 64  # a JPEG's magic bytes
    response = await client.post("/materials", files={"file": ("lease.jpg", content, "image/jpeg")}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def submit(client: httpx.AsyncClient, headers: dict[str, str] | None = None, **changes: Any) -> dict[str, Any]:
    headers = headers or person()
    body = submission(**changes)
    if any(m.get("blob_id") is None and m.get("licence_id") is None for m in body["materials"]):
        blob = await upload(client, headers)
        body["materials"] = [
            {"name": m["name"], "blob_id": blob} if m.get("licence_id") is None else m for m in body["materials"]
        ]
    response = await client.post("/cases", json=body, headers=keyed(headers))
    assert response.status_code == 201, response.text
    return response.json()


_keys = itertools.count()


def keyed(headers: dict[str, str]) -> dict[str, str]:
    """The headers with an Idempotency-Key of their own (required on POST /cases)."""
    return {"Idempotency-Key": f"test-{next(_keys)}-{time.time_ns()}", **headers}


async def act(client: httpx.AsyncClient, case: dict[str, Any], headers: dict[str, str], action: str,
              **body: Any) -> httpx.Response:  # fmt: skip
    """One officer action with the case's current version."""
    current = await client.get(f"/cases/{case['case_no']}", headers=headers)
    version = current.json()["version"] if current.status_code == 200 else 1
    return await client.post(
        f"/cases/{case['case_no']}/actions", json={"action": action, **body},
        headers={**headers, "If-Match": str(version)},
    )  # fmt: skip
