"""J9's kiosk (7×24 自助, issue 14, ADR 0028) on the platform `make run` starts, through the gateway:
a person identified at the demo hall's kiosk by her ID card lists her cases and their progress,
applies for a kiosk-enabled matter (and is refused, naming the rule, for one that is not), prints
her 办件进度单 and one of her licences — the sealed PDF validates — and sees the print in the
licence's access log with the kiosk's device id. Without the kiosk's signature each request is 401."""

from __future__ import annotations

import io
import json
import time
from datetime import date, timedelta
from urllib.parse import urlsplit

import httpx
import zxingcpp
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader
from stdnum.cn import ric

from kit.signing import new_nonce, signed_headers
from services.licence.domain.pdf import validate_signed_pdf

KIOSK = "KIOSK-371402-01"
KIOSK_SECRET = "make-run-only-kiosk-371402-01-secret"  # platform.toml: IDENTITY_DEMO_KIOSK_SECRET
OFFICER_PASSWORD = "demo-pass-2026"
LOST_CARD = "GAJ-XK-0003"  # 居民身份证挂失补领: channels online, counter, kiosk
SOLE_TRADER = "SCJGJ-XK-0001"  # 个体工商户设立登记: no kiosk
API = "/api/v1"


def id_number(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


WANG = id_number("37140219750303004")  # 王五妹, who walks up to the kiosk at night


def kiosk(client: httpx.Client, method: str, path: str, body: dict | None = None, *, sign: bool = True,
          token: str | None = None, headers: dict | None = None) -> httpx.Response:  # fmt: skip
    """A request as the kiosk sends it: signed (ADR 0003/0025) over the gateway's path and the body."""
    raw = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
    sent = {"Content-Type": "application/json"} if body is not None else {}
    path = API + path
    if sign:
        sent |= signed_headers(KIOSK, KIOSK_SECRET, method, path, raw, nonce=new_nonce(), timestamp=int(time.time()))
    if token:
        sent["Authorization"] = f"Bearer {token}"
    return client.request(method, path, content=raw or None, headers={**sent, **(headers or {})})


def until(check, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def qr_texts(document: bytes) -> list[str]:
    page = PdfFileReader(io.BytesIO(document)).root["/Pages"]["/Kids"][0]
    texts = []
    for image in page["/Resources"]["/XObject"].values():
        stream = image.get_object()
        if stream.get("/Subtype") == "/Image":
            bitmap = Image.frombytes("L", (int(stream["/Width"]), int(stream["/Height"])), stream.data)
            texts += [found.text for found in zxingcpp.read_barcodes(bitmap)]
    return texts


def test_a_person_at_the_kiosk_applies_follows_and_prints(running_platform):
    with httpx.Client(base_url=running_platform["gateway"], timeout=30) as client:
        # GAJ issued her 户口簿 and 身份证 as e-licences (a department issuing directly).
        gaj = client.post(API + "/identity/sessions",
                          json={"method": "officer", "login": "gaj.officer", "password": OFFICER_PASSWORD})  # fmt: skip
        assert gaj.status_code == 201, gaj.text
        officer = {"Authorization": "Bearer " + gaj.json()["access_token"]}
        licences = {}
        for licence_type in ("household_register", "resident_id_card"):
            made = client.post(API + "/licence/licences", headers=officer,
                               json={"licence_type": licence_type, "holder": WANG, "holder_name": "王五妹", "data": {}})  # fmt: skip
            assert made.status_code == 201, made.text
            licences[licence_type] = made.json()

        today = date.today()
        card = {"id_number": WANG, "name": "王五妹", "valid_from": (today - timedelta(days=900)).isoformat(),
                "valid_until": (today + timedelta(days=2000)).isoformat()}  # fmt: skip
        read = until(lambda: (r := kiosk(client, "POST", "/identity/kiosk-sessions", card)).status_code != 401 and r)
        assert read and read.status_code == 201, read
        token = read.json()["access_token"]

        # She applies for a kiosk matter: her 户口簿 is the e-licence, nothing to upload.
        body = {"matter_code": LOST_CARD, "delivery": {"method": "window"},
                "form": {"applicant_name": "王五妹", "applicant_id": WANG, "mobile": "13811110077"},
                "materials": [{"name": "居民户口簿", "licence_id": licences["household_register"]["identifier"],
                               "licence_version": 1}]}  # fmt: skip

        def submit(matter: str, key: str, **more) -> httpx.Response:
            return kiosk(client, "POST", "/caseflow/cases", {**body, "matter_code": matter}, token=token,
                         headers={"Idempotency-Key": key}, **more)  # fmt: skip

        created = until(lambda: (r := submit(LOST_CARD, "kiosk-wang-1")).status_code == 201 and r)
        assert created, submit(LOST_CARD, "kiosk-wang-1").text
        case = created.json()
        assert case["channel"] == "kiosk" and case["state"] == "submitted"
        refused = submit(SOLE_TRADER, "kiosk-wang-2")
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("/channel-not-allowed") and refused.json()["rule"] == "channels"
        assert submit(LOST_CARD, "kiosk-wang-3", sign=False).status_code == 401

        # Her cases and their progress.
        mine = kiosk(client, "GET", "/caseflow/cases", token=token)
        assert mine.status_code == 200 and [c["case_no"] for c in mine.json()["items"]] == [case["case_no"]]
        detail = kiosk(client, "GET", f"/caseflow/cases/{case['case_no']}", token=token)
        assert detail.status_code == 200 and detail.json()["state"] == "submitted" and detail.json()["due_on"]
        assert kiosk(client, "GET", "/caseflow/cases", token=token, sign=False).status_code == 401

        # Her 办件进度单: the QR code opens the public progress page of this case.
        sheet = kiosk(client, "POST", f"/caseflow/cases/{case['case_no']}/prints", token=token)
        assert sheet.status_code == 200 and sheet.content.startswith(b"%PDF"), sheet.text
        [url] = qr_texts(sheet.content)
        parts = urlsplit(url)
        progress = client.get(parts.path + "?" + parts.query)
        assert progress.status_code == 200 and progress.json()["case_no"] == case["case_no"]
        printed = kiosk(client, "GET", f"/caseflow/cases/{case['case_no']}", token=token).json()["timeline"]
        assert [(line["actor"], line["detail"]["device"]) for line in printed if line["action"] == "printed"] == [
            (f"kiosk:{KIOSK}", KIOSK)
        ]
        assert kiosk(client, "POST", f"/caseflow/cases/{case['case_no']}/prints", token=token,
                     sign=False).status_code == 401  # fmt: skip

        # Her 身份证 printed at the kiosk: sealed (the sandbox's development seal), and logged.
        identifier = licences["resident_id_card"]["identifier"]
        pdf = kiosk(client, "POST", f"/licence/licences/{identifier}/prints", token=token)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), pdf.text
        check = validate_signed_pdf(pdf.content, trust_roots=[])
        assert check.intact and check.valid and check.covers_whole_file and not check.trusted
        assert (
            kiosk(client, "POST", f"/licence/licences/{identifier}/prints", token=token, sign=False).status_code == 401
        )
        log = kiosk(client, "GET", f"/licence/licences/{identifier}/access-log", token=token)
        assert log.status_code == 200, log.text
        [entry] = log.json()["items"]
        assert (entry["action"], entry["channel"], entry["device"]) == ("print", "kiosk", KIOSK)
        assert WANG not in json.dumps(log.json())
        # somebody else's licence does not print from her session
        other = client.post(API + "/licence/licences", headers=officer, json={
            "licence_type": "resident_id_card", "holder": id_number("37140219750303012"), "holder_name": "邻居",
            "data": {}})  # fmt: skip
        assert other.status_code == 201, other.text
        stranger = kiosk(client, "POST", f"/licence/licences/{other.json()['identifier']}/prints", token=token)
        assert stranger.status_code == 404
