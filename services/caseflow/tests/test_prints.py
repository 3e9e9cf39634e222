"""A case's 办件进度单 printed (issue 14, ADR 0028): the applicant's side only, every print a
``printed`` line on the timeline with channel and the kiosk's device (no ID number), not on the
public progress; the QR code read back out of the PDF is the progress page that answers."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

from services.caseflow.domain.test_progress_sheet import qr_texts
from services.caseflow.tests.conftest import ZHANG_SAN, add_matter, keyed, matter_definition, officer, person
from services.caseflow.tests.test_hall import _minimal, kiosk_token

OTHER = "110105194912310038"


async def _case(caseflow) -> dict:
    await add_matter(caseflow, matter_definition("KIOSK-1", materials=[], channels=["online", "kiosk"]))
    made = await caseflow.post("/cases", json={"matter_code": "KIOSK-1", **_minimal()}, headers=keyed(kiosk_token()))
    assert made.status_code == 201, made.text
    return made.json()


def _prints(detail: dict) -> list[dict]:
    return [line for line in detail["timeline"] if line["action"] == "printed"]


async def test_a_kiosk_print_is_on_the_timeline_and_its_qr_opens_the_progress(caseflow):
    case = await _case(caseflow)
    no = case["case_no"]
    printed = await caseflow.post(f"/cases/{no}/prints", headers=kiosk_token())
    assert printed.status_code == 200 and printed.headers["content-type"] == "application/pdf"
    assert printed.content.startswith(b"%PDF")
    [url] = qr_texts(printed.content)
    parts = urlsplit(url)
    assert parts.path.endswith(f"/progress/{no}")
    progress = await caseflow.get(f"/progress/{no}", params={"code": parse_qs(parts.query)["code"][0]})
    assert progress.status_code == 200 and progress.json()["state"] == case["state"]
    assert "printed" not in [step["action"] for step in progress.json()["steps"]]  # prints are not steps
    online = await caseflow.post(f"/cases/{no}/prints", headers=person())
    assert online.status_code == 200
    detail = (await caseflow.get(f"/cases/{no}", headers=person())).json()
    kiosk_line, online_line = _prints(detail)
    assert kiosk_line["actor"] == "kiosk:KIOSK-0007" and kiosk_line["detail"]["device"] == "KIOSK-0007"
    assert kiosk_line["detail"] == {"document": "progress_sheet", "channel": "kiosk", "device": "KIOSK-0007"}
    assert online_line["actor"] == "applicant" and online_line["detail"]["channel"] == "online"
    assert ZHANG_SAN not in str(_prints(detail))
    assert detail["version"] == case["version"]  # a print changes nothing of the case
    # the department's officers see the prints on the case's timeline
    handled = (await caseflow.get(f"/cases/{no}", headers=officer("reviewer"))).json()
    assert len(_prints(handled)) == 2


async def test_only_the_applicants_side_prints_and_a_refusal_leaves_no_line(caseflow):
    case = await _case(caseflow)
    no = case["case_no"]
    assert (await caseflow.post(f"/cases/{no}/prints", headers=person(OTHER))).status_code == 404
    officer_print = await caseflow.post(f"/cases/{no}/prints", headers=officer("reviewer"))
    assert officer_print.status_code == 403 and officer_print.json()["rule"] == "relation"
    assert (await caseflow.post("/cases/371402-20260101-0001/prints", headers=kiosk_token())).status_code == 404
    assert (await caseflow.post("/cases/..%2Fworklist/prints", headers=kiosk_token())).status_code in {404, 422}
    assert _prints((await caseflow.get(f"/cases/{no}", headers=person())).json()) == []


async def test_concurrent_prints_each_get_their_line(caseflow):
    case = await _case(caseflow)
    answers = await asyncio.gather(*(caseflow.post(f"/cases/{case['case_no']}/prints", headers=kiosk_token())
                                     for _ in range(5)))  # fmt: skip
    assert [a.status_code for a in answers] == [200] * 5
    assert len(_prints((await caseflow.get(f"/cases/{case['case_no']}", headers=person())).json())) == 5
