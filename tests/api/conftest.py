"""The API-wide checks' platform and callers: the whole platform as `make run` starts it, the gateway's
merged OpenAPI, a citizen at real-name level 2 and a demo officer.

The platform is started by tests/e2e's own start-up (the same function, not a copy), but as a
platform of its own for this package: the fuzzer writes whatever the schema allows (calendar
overrides, enterprises, cases), and the journeys in tests/e2e must not see that. Its gateway's rate
limits are raised so that the fuzzer's pace tests the services behind it, not the limiter (which
gateway/tests covers).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e import conftest as e2e_conftest

PASSWORD = "secret-2026"
OFFICER_LOGIN = "scjgj.officer"
OFFICER_PASSWORD = "demo-pass-2026"
CITIZEN_NAME = "钱十"
CITIZEN_MOBILE = "13955550001"
# Token lifetime is 10 minutes: a caller's headers are renewed well before that.
TOKEN_REUSE_SECONDS = 240

# What the fuzzer's platform gets on top of `make run`'s environment.
PLATFORM_ENV = {
    "GATEWAY_RATE_LIMIT_IP_PER_SECOND": "100000",
    "GATEWAY_RATE_LIMIT_IP_BURST": "100000",
    "GATEWAY_RATE_LIMIT_SUBJECT_PER_SECOND": "100000",
    "GATEWAY_RATE_LIMIT_SUBJECT_BURST": "100000",
}


def valid_id_number(first17: str) -> str:
    """A resident identity number (GB 11643) with its check character."""
    from stdnum.cn import ric

    return first17 + ric.calc_check_digit(first17 + "0")


CITIZEN_ID = valid_id_number("37140219900909001")  # 钱十, Dezhou; not the registry's 998/999 sequences


@contextlib.contextmanager
def _environment(extra: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="package")
def api_platform(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """`make run` on free ports with its own data directory, for this package only."""
    start = contextlib.contextmanager(e2e_conftest.running_platform.__wrapped__)
    with _environment(PLATFORM_ENV):
        platform = start(tmp_path_factory)
        info = platform.__enter__()  # the environment is read when the processes start
    try:
        yield info
    finally:
        platform.__exit__(None, None, None)


@pytest.fixture(scope="package")
def gateway_url(api_platform) -> str:
    return api_platform["gateway"]


@pytest.fixture(scope="package")
def merged_openapi(gateway_url) -> dict[str, Any]:
    """The gateway's merged document once every area has answered (services start one by one)."""
    deadline = time.monotonic() + 60
    while True:
        document = httpx.get(gateway_url + "/api/v1/openapi.json", timeout=30).json()
        if not document["info"].get("x-unavailable-areas") or time.monotonic() > deadline:
            assert not document["info"].get("x-unavailable-areas"), document["info"]
            return document
        time.sleep(1)


def _login(client: httpx.Client, body: dict[str, Any]) -> dict[str, str]:
    response = client.post("/api/v1/identity/sessions", json=body)
    assert response.status_code == 201, response.text
    return {"Authorization": "Bearer " + response.json()["access_token"]}


def _register_citizen(client: httpx.Client) -> None:
    """Registered through the sandbox SMS flow and verified against the (sandbox) population registry."""
    sent = client.post("/api/v1/identity/sms-codes", json={"mobile": CITIZEN_MOBILE, "purpose": "register"})
    assert sent.status_code == 202, sent.text
    text = client.get("/api/v1/identity/sandbox/sms", params={"mobile": CITIZEN_MOBILE}).json()[0]["text"]
    code = re.search(r"\d{6}", text).group(0)
    registered = client.post(
        "/api/v1/identity/register",
        json={"id_number": CITIZEN_ID, "name": CITIZEN_NAME, "mobile": CITIZEN_MOBILE, "password": PASSWORD,
              "sms_code": code},
    )  # fmt: skip
    assert registered.status_code == 201, registered.text
    headers = _login(client, {"method": "password", "login": CITIZEN_ID, "password": PASSWORD})
    verified = client.post("/api/v1/identity/me/verification", json={"method": "registry"}, headers=headers)
    assert verified.status_code == 200 and verified.json()["level"] >= 2, verified.text


class Callers:
    """Fresh bearer headers for the citizen (L2) and the officer, renewed before the token expires."""

    def __init__(self, gateway_url: str) -> None:
        self.client = httpx.Client(base_url=gateway_url, timeout=30)
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}
        _register_citizen(self.client)

    def login(self, role: str) -> dict[str, str]:
        """A new session of ``role`` (its own token, so logging it out touches no other caller)."""
        if role == "citizen":
            return _login(self.client, {"method": "password", "login": CITIZEN_ID, "password": PASSWORD})
        if role == "officer":
            return _login(self.client, {"method": "officer", "login": OFFICER_LOGIN, "password": OFFICER_PASSWORD})
        raise ValueError(role)

    def headers(self, role: str) -> dict[str, str]:
        cached = self._cache.get(role)
        if cached is None or time.monotonic() - cached[0] > TOKEN_REUSE_SECONDS:
            cached = (time.monotonic(), self.login(role))
            self._cache[role] = cached
        return dict(cached[1])


@pytest.fixture(scope="package")
def callers(gateway_url) -> Iterator[Callers]:
    callers = Callers(gateway_url)
    yield callers
    callers.client.close()


ROLES = ["citizen", "officer"]
