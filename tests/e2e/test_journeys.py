"""The journeys of ../shared/JOURNEYS.md through the gateway of a `make run` platform, as far as
the services built so far carry them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

ZHANG = "11010519491231002X"  # J1: citizen
WANG = "440524188001010014"  # J3: legal representative
ZHAO = "11010519491231003"  # J3: agent (check character added by _valid)
COMPANY = "91110000600037341L"
PASSWORD = "secret-2026"


def _valid(number: str) -> str:
    from stdnum.cn import ric

    return number[:17] + ric.calc_check_digit(number[:17] + "0")


@pytest.fixture(scope="module")
def gateway(running_platform):
    with httpx.Client(base_url=running_platform["gateway"] + "/api/v1", timeout=30) as client:
        yield client


def register(client: httpx.Client, id_number: str, name: str, mobile: str) -> None:
    assert client.post("/identity/sms-codes", json={"mobile": mobile, "purpose": "register"}).status_code == 202
    text = client.get("/identity/sandbox/sms", params={"mobile": mobile}).json()[0]["text"]
    code = re.search(r"\d{6}", text).group(0)
    response = client.post(
        "/identity/register",
        json={"id_number": id_number, "name": name, "mobile": mobile, "password": PASSWORD, "sms_code": code},
    )
    assert response.status_code == 201, response.text


def login(client: httpx.Client, login_name: str, password: str = PASSWORD, method: str = "password") -> dict:
    response = client.post("/identity/sessions", json={"method": method, "login": login_name, "password": password})
    assert response.status_code == 201, response.text
    return {"Authorization": "Bearer " + response.json()["access_token"]}


def test_j1_citizen_registers_from_wechat_verifies_and_finds_the_matter(gateway):
    register(gateway, ZHANG, "张三", "13800138000")
    first_wechat = gateway.post("/identity/sessions", json={"method": "wechat", "code": "wx-zhangsan-1"})
    assert first_wechat.status_code == 409  # a never-seen WeChat account must bind once
    bound = gateway.post(
        "/identity/sessions",
        json={"method": "wechat", "code": "wx-zhangsan-2", "bind": {"login": ZHANG, "password": PASSWORD}},
    )
    assert bound.status_code == 201
    headers = {"Authorization": "Bearer " + bound.json()["access_token"]}
    assert gateway.post("/identity/me/verification", json={"method": "registry"}, headers=headers).json()["level"] == 2

    found = gateway.get("/catalog/matters", params={"q": "yyzz"}).json()
    names = [item["name"] for item in found["items"]]
    assert any("个体工商户" in name for name in names), names
    code = next(item["code"] for item in found["items"] if "个体工商户" in item["name"])
    matter = gateway.get(f"/catalog/matters/{code}").json()
    guide = matter["guide"]
    assert matter["status"] == "published" and guide["max_visits"] == 0  # J1: 不见面
    licence_types = {m.get("licence_type") for m in guide["materials"]}
    assert "resident_id_card" in licence_types  # the ID card is satisfied by his identity


def test_j3_legal_representative_mandates_an_agent_who_acts_for_the_company(gateway):
    zhao = _valid(ZHAO)
    register(gateway, WANG, "王五", "13900139000")
    register(gateway, zhao, "赵六", "13700137000")
    wang = login(gateway, WANG)
    gateway.post("/identity/me/verification", json={"method": "registry"}, headers=wang)
    wang = login(gateway, WANG)
    created = gateway.post("/identity/enterprises", json={"uscc": COMPANY, "name": "某某餐饮有限公司"}, headers=wang)
    assert created.status_code == 201, created.text
    expires = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    grant = gateway.post(
        f"/identity/enterprises/{COMPANY}/agents",
        json={"agent_id_number": zhao, "scopes": ["caseflow:food-permit"], "expires_at": expires},
        headers=wang,
    )
    assert grant.status_code == 201, grant.text
    acting = gateway.post("/identity/sessions/act-as", json={"enterprise": COMPANY}, headers=login(gateway, zhao))
    assert acting.status_code == 201
    me = gateway.get("/identity/me", headers={"Authorization": "Bearer " + acting.json()["access_token"]}).json()
    assert me["subject"] == COMPANY and me["kind"] == "enterprise" and me["scopes"] == ["caseflow:food-permit"]


def test_j7_no_one_snoops_and_spoofed_headers_do_nothing(gateway):
    stranger = _valid("11010519800101004")
    register(gateway, stranger, "路人", "13600136000")
    headers = {**login(gateway, stranger), "X-Subject-Id": ZHANG, "X-Roles": "admin"}
    me = gateway.get("/identity/me", headers=headers).json()
    assert me["subject"] == stranger and me["id_number"] == stranger
    # a citizen cannot write the catalog, however the headers look
    assert gateway.post("/catalog/matters", json={}, headers=headers).status_code in (401, 403)


def test_department_admin_seeded_by_make_run_can_log_in(gateway):
    officer = gateway.post(
        "/identity/sessions", json={"method": "officer", "login": "scjgj.admin", "password": "demo-pass-2026"}
    )
    assert officer.status_code == 201
    me = gateway.get("/identity/me", headers={"Authorization": "Bearer " + officer.json()["access_token"]}).json()
    assert me["kind"] == "officer" and me["department"] == "SCJGJ" and me["roles"] == ["admin"]
