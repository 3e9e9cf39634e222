"""J9's identity half on the platform `make run` starts (ADR 0025): the counter officer makes a
token for a walk-in; at night the demo hall's kiosk (seed-demo, make-run-only secret) reads a
neighbour's ID card and her token works only on requests the kiosk signs — through the gateway,
which learnt the kiosk from identity."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

import httpx
from stdnum.cn import ric

from kit.signing import new_nonce, signed_headers

KIOSK = "KIOSK-371402-01"
KIOSK_SECRET = "make-run-only-kiosk-371402-01-secret"  # platform.toml: IDENTITY_DEMO_KIOSK_SECRET


def id_number(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


def kiosk_request(client: httpx.Client, method: str, path: str, body: dict | None = None, *, sign: bool = True,
                  token: str | None = None) -> httpx.Response:  # fmt: skip
    raw = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if sign:
        headers |= signed_headers(KIOSK, KIOSK_SECRET, method, path, raw, nonce=new_nonce(), timestamp=int(time.time()))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.request(method, path, content=raw or None, headers=headers)


def test_counter_and_kiosk_tokens_on_the_running_platform(running_platform):
    with httpx.Client(base_url=running_platform["gateway"], timeout=15) as client:
        counter = client.post("/api/v1/identity/sessions",
                              json={"method": "officer", "login": "counter", "password": "demo-pass-2026"})  # fmt: skip
        assert counter.status_code == 201, counter.text
        liu = id_number("37140219450506003")
        made = client.post("/api/v1/identity/counter-sessions", json={"id_number": liu, "name": "刘老汉"},
                           headers={"Authorization": "Bearer " + counter.json()["access_token"]})  # fmt: skip
        assert made.status_code == 201 and made.json()["level"] == 4, made.text
        me = client.get("/api/v1/identity/me", headers={"Authorization": "Bearer " + made.json()["access_token"]})
        assert me.status_code == 200 and me.json()["subject"] == liu

        today = date.today()
        neighbour = id_number("37140219800808004")
        card = {"id_number": neighbour, "name": "赵六", "valid_from": (today - timedelta(days=700)).isoformat(),
                "valid_until": (today + timedelta(days=3000)).isoformat()}  # fmt: skip
        sessions = "/api/v1/identity/kiosk-sessions"
        deadline = time.monotonic() + 30  # the gateway reads the kiosks at start and on every change
        while True:
            answer = kiosk_request(client, "POST", sessions, card)
            if answer.status_code != 401 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert answer.status_code == 201, answer.text
        token = answer.json()["access_token"]
        unsigned = kiosk_request(client, "POST", sessions, card, sign=False)
        assert unsigned.status_code == 401 and unsigned.json()["reason"] == "missing"
        mine = kiosk_request(client, "GET", "/api/v1/identity/me", token=token)
        assert mine.status_code == 200 and mine.json()["subject"] == neighbour
        stolen = kiosk_request(client, "GET", "/api/v1/identity/me", token=token, sign=False)
        assert stolen.status_code == 401 and stolen.json()["type"].endswith("/kiosk-signature-required")
