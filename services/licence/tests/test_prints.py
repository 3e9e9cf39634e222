"""Prints (issue 14, ADR 0028): a kiosk's or the counter's PDF and ``POST /prints`` are written to the
licence's access log with channel, the kiosk's device id and time; an online GET /pdf stays an
unlogged download. The PDFs are sealed (a sandbox's development seal) and validated for real."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from kit.migrate import upgrade
from services.licence.cli import seed_demo
from services.licence.domain import access
from services.licence.domain.pdf import validate_signed_pdf
from services.licence.main import create_app
from services.licence.tests.conftest import (
    COMPANY,
    LI_SI,
    TOKENS,
    ZHANG_SAN,
    bearer,
    enterprise,
    fetch_keys,
    issue,
    officer,
    person,
    settings_for,
)  # fmt: skip

DEVICE = "KIOSK-371402-01"


def kiosk(subject: str = ZHANG_SAN, *, device: str = DEVICE, **more: Any) -> dict[str, str]:
    """A kiosk session's token as identity makes it (ADR 0025): ``chn: kiosk``, ``dev``, no ``sid``."""
    kind = "enterprise" if subject == COMPANY else "person"
    return bearer(TOKENS.token(sub=subject, kind=kind, lvl=2, chn="kiosk", dev=device, **more))


@pytest.fixture
async def sealed(database_url, nats_server, tmp_path):
    """Licence on a sandbox platform: PDFs sealed with the development seal."""
    await asyncio.to_thread(upgrade, "services.licence", database_url)
    await seed_demo(database_url)
    settings = settings_for(database_url, nats_server.url, sandbox=True,
                            signing_key_file=str(tmp_path / "licence-signing-key.json"))  # fmt: skip
    app = create_app(settings, key_fetcher=fetch_keys)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://licence") as client:
            yield client


async def _log(client: httpx.AsyncClient, identifier: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(f"/licences/{identifier}/access-log", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def _valid_pdf(content: bytes) -> None:
    assert content.startswith(b"%PDF")
    check = await asyncio.to_thread(validate_signed_pdf, content, trust_roots=[])
    assert check.intact and check.valid and "开发用电子印章" in check.signer


async def test_a_kiosk_print_is_logged_with_its_device_and_an_online_download_is_not(sealed):
    mine = await issue(sealed, holder=ZHANG_SAN, holder_name="张三")
    path = f"/licences/{mine['identifier']}"
    download = await sealed.get(path + "/pdf", headers=person(ZHANG_SAN))
    assert download.status_code == 200 and (await _log(sealed, mine["identifier"], person()))["total"] == 0
    printed = await sealed.get(path + "/pdf", headers=kiosk())
    assert printed.status_code == 200 and printed.headers["content-type"] == "application/pdf"
    await _valid_pdf(printed.content)
    posted = await sealed.post(path + "/prints", headers=kiosk())
    assert posted.status_code == 200
    await _valid_pdf(posted.content)
    online = await sealed.post(path + "/prints", headers=person(ZHANG_SAN))
    assert online.status_code == 200
    log = await _log(sealed, mine["identifier"], person())
    assert log["total"] == 3
    newest, *older = log["items"]
    assert newest["action"] == "print" and newest["channel"] == "online" and newest["device"] is None
    assert newest["reader"] == "holder" and newest["reader_kind"] == "holder"
    for entry in older:
        assert entry["action"] == "print" and entry["channel"] == "kiosk" and entry["device"] == DEVICE
        assert entry["reader"] == f"kiosk:{DEVICE}" and entry["at"] <= newest["at"]
    assert ZHANG_SAN not in str(log)  # never the full ID number
    # the log is the holder's own, from the kiosk too
    assert (await _log(sealed, mine["identifier"], kiosk()))["total"] == 3


async def test_a_kiosk_prints_only_the_holders_own_licences(sealed):
    theirs = await issue(sealed, holder=LI_SI, holder_name="李四")
    company = await issue(sealed)  # the enterprise's
    for target in (theirs, company):
        for method, suffix in (("GET", "/pdf"), ("POST", "/prints")):
            response = await sealed.request(method, f"/licences/{target['identifier']}{suffix}", headers=kiosk())
            assert response.status_code == 404, response.text  # not hers: as if it did not exist
    # the issuing officer reads the licence but prints nothing of it
    response = await sealed.post(f"/licences/{company['identifier']}/prints", headers=officer("SCJGJ", "decider"))
    assert response.status_code == 403 and response.json()["rule"] == "relation"
    # act-as from the kiosk (ADR 0025 keeps chn/dev): an agent whose mandate covers licences prints
    agent = kiosk(COMPANY, act={"sub": ZHANG_SAN}, scope="licence")
    outside = kiosk(COMPANY, act={"sub": ZHANG_SAN}, scope="caseflow")
    refused = await sealed.post(f"/licences/{company['identifier']}/prints", headers=outside)
    assert refused.status_code == 404  # a mandate without licences does not see them (the table's walk)
    assert (await _log(sealed, company["identifier"], enterprise()))["total"] == 0  # refusals print nothing
    printed = await sealed.get(f"/licences/{company['identifier']}/pdf", headers=agent)
    assert printed.status_code == 200
    [entry] = (await _log(sealed, company["identifier"], enterprise()))["items"]
    assert entry["reader_kind"] == "agent" and entry["device"] == DEVICE and entry["channel"] == "kiosk"
    assert ZHANG_SAN not in str(entry)


async def test_every_actor_against_the_print_cell(sealed):
    actors = {
        "holder": (enterprise(), access.HOLDER, ()),
        "agent": (enterprise(actor=LI_SI, scope="licence"), access.AGENT, ()),
        "agent_outside": (enterprise(actor=LI_SI, scope="caseflow"), access.AGENT_OUTSIDE_SCOPE, ()),
        "stranger": (person(ZHANG_SAN), access.NONE, ()),
        **{f"SCJGJ.{role}": (officer("SCJGJ", role), access.ISSUER_OFFICER, (role,)) for role in access.OFFICER_ROLES},
        "BDCDJ.decider": (officer("BDCDJ", "decider"), access.NONE, ("decider",)),
    }
    target = await issue(sealed)
    allowed = 0
    for name, (headers, relation, roles) in actors.items():
        response = await sealed.post(f"/licences/{target['identifier']}/prints", headers=headers)
        decision = access.decide("licence.print", relation, roles)
        assert response.status_code == (200 if decision.allowed else decision.status), (name, response.text)
        allowed += decision.allowed
    assert allowed == 2 and (await _log(sealed, target["identifier"], enterprise()))["total"] == allowed


async def test_concurrent_prints_each_get_their_line(sealed):
    mine = await issue(sealed, holder=ZHANG_SAN, holder_name="张三")
    path = f"/licences/{mine['identifier']}/prints"
    answers = await asyncio.gather(
        *(sealed.post(path, headers=kiosk(device=f"KIOSK-371402-0{i}")) for i in range(1, 6))
    )
    assert [a.status_code for a in answers] == [200] * 5
    log = await _log(sealed, mine["identifier"], person())
    assert sorted(e["device"] for e in log["items"]) == [f"KIOSK-371402-0{i}" for i in range(1, 6)]


async def test_no_seal_no_print_and_no_line(licence):
    mine = await issue(licence, holder=ZHANG_SAN, holder_name="张三")
    response = await licence.post(f"/licences/{mine['identifier']}/prints", headers=kiosk())
    assert response.status_code == 501
    assert (await _log(licence, mine["identifier"], person()))["total"] == 0
