"""End to end through the running gateway: real identity (on its own NATS), real processes.

The gateway and identity run as uvicorn subprocesses on free ports; a small recording service
stands in for express and caseflow's department inbox so the tests can see what reached it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.signing import signed_headers
from kit.natsd import free_port

REPO = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"
EMS_SECRET = "e2e-ems-secret"
DEPT_SECRET = "e2e-dept-secret"
PASSWORD = "secret123"


class Recorder:
    """A stand-in service that records every request it receives."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path != "/readyz":
                    recorder.seen.append((self.command, self.path, dict(self.headers), body))
                payload = b'{"ok":true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _uvicorn(app: str, port: int, env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log", *extra]  # fmt: skip
    return subprocess.Popen(
        args, cwd=REPO, env={**os.environ, **env}, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _wait(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url}: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def platform(nats_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("gateway-e2e")
    database = work / "identity.db"
    identity_env = {
        "IDENTITY_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "IDENTITY_NATS_URL": nats_server.url,
        "IDENTITY_JWKS_URL": "",
        "IDENTITY_PASSWORD_TIME_COST": "1",
        "IDENTITY_PASSWORD_MEMORY_KIB": "64",
        "IDENTITY_SANDBOX_DELAY_MS": "0",
        "IDENTITY_SMS_RESEND_INTERVAL_SECONDS": "0",
        "IDENTITY_LOG_JSON": "false",
        "IDENTITY_SANDBOX": "true",  # the tests read SMS codes from the sandbox page
    }
    subprocess.run(
        [sys.executable, "-m", "kit.migrate", "services.identity"], cwd=REPO, env={**os.environ, **identity_env},
        check=True, capture_output=True,
    )  # fmt: skip
    identity_port, gateway_port = free_port(), free_port()
    identity_url = f"http://127.0.0.1:{identity_port}"
    with Recorder() as recorder:
        identity = _uvicorn("services.identity.main:create_app", identity_port, identity_env, work / "identity.log")
        gateway = None
        try:
            _wait(identity_url + "/readyz", identity, work / "identity.log")
            gateway_env = {
                "GATEWAY_ENVIRONMENT": "development",
                "GATEWAY_UPSTREAMS": json.dumps(
                    {
                        "identity": identity_url,
                        "express": recorder.url,
                        "departments": recorder.url + "/departments",
                        "licence": f"http://127.0.0.1:{free_port()}",  # configured, never started
                    }
                ),
                "GATEWAY_JWKS_URL": identity_url + "/.well-known/jwks.json",
                "GATEWAY_READ_TIMEOUT_SECONDS": "2",
                "GATEWAY_CONNECT_TIMEOUT_SECONDS": "1",
                "GATEWAY_MAX_BODY_BYTES": "65536",
                "GATEWAY_RATE_LIMIT_SUBJECT_PER_SECOND": "1",
                "GATEWAY_RATE_LIMIT_SUBJECT_BURST": "25",
                "GATEWAY_PARTNERS": json.dumps(
                    {
                        "ems": {"secrets": [EMS_SECRET], "paths": ["/api/v1/express/callbacks/ems"]},
                        "dept-4401": {"secrets": [DEPT_SECRET], "paths": ["/api/v1/departments/4401/**"]},
                    }
                ),
                "GATEWAY_LOG_JSON": "false",
            }
            gateway = _uvicorn("gateway.main:create_app", gateway_port, gateway_env, work / "gateway.log",
                               "--no-proxy-headers")  # fmt: skip
            _wait(f"http://127.0.0.1:{gateway_port}/healthz", gateway, work / "gateway.log")
            yield {
                "base": f"http://127.0.0.1:{gateway_port}",
                "identity": identity,
                "identity_url": identity_url,
                "database": database,
                "recorder": recorder,
            }
        finally:
            if gateway is not None:
                _stop(gateway)
            _stop(identity)


def _register_and_login(client: httpx.Client, id_number: str, mobile: str) -> str:
    r = client.post("/api/v1/identity/sms-codes", json={"mobile": mobile, "purpose": "register"})
    assert r.status_code == 202, r.text
    messages = client.get("/api/v1/identity/sandbox/sms", params={"mobile": mobile}).json()
    code = re.search(r"(?<!\d)\d{6}(?!\d)", messages[0]["text"]).group(0)
    body = {"id_number": id_number, "name": "张三", "mobile": mobile, "password": PASSWORD, "sms_code": code}
    r = client.post("/api/v1/identity/register", json=body)
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/identity/sessions", json={"method": "password", "login": id_number, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return r.json()["access_token"]


PERSON = "11010519491231002X"
OTHER_PERSON = "110105199003070017"


@pytest.fixture(scope="module")
def token(platform) -> str:
    with httpx.Client(base_url=platform["base"], timeout=10) as client:
        return _register_and_login(client, PERSON, "13800138000")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_register_login_me_and_spoofed_headers_change_nothing(platform, token):
    with httpx.Client(base_url=platform["base"], timeout=10) as client:
        forged = {"X-Subject-Id": OTHER_PERSON, "X-Subject-Level": "4", "X-Roles": "admin", "X-Subject-Kind": "officer"}
        r = client.get("/api/v1/identity/me", headers={**bearer(token), **forged})
        assert r.status_code == 200, r.text
        assert PERSON[-4:] in json.dumps(r.json()) and OTHER_PERSON[-4:] not in json.dumps(r.json())
        assert r.headers["x-request-id"]
        r = client.get("/api/v1/identity/me", headers=forged)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM


def _identity_key(database: Path) -> tuple[str, Ed25519PrivateKey]:
    with sqlite3.connect(database) as connection:
        kid, pem = connection.execute("SELECT kid, private_pem FROM signing_keys ORDER BY created_at DESC").fetchone()
    return kid, serialization.load_pem_private_key(pem.encode(), password=None)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_bad_tokens_are_401_problem(platform, token):
    kid, identity_key = _identity_key(platform["database"])
    now = int(time.time())
    claims = {"iss": "yiwang-identity", "aud": "yiwang", "sub": PERSON, "kind": "person", "lvl": 4,
              "iat": now, "exp": now + 600, "sid": "x", "jti": uuid.uuid4().hex}  # fmt: skip

    def signed(key, **changes) -> str:
        return jwt.encode({**claims, **changes}, key, algorithm="EdDSA", headers={"kid": kid})

    header, _payload, signature = token.split(".")
    bad = {
        "tampered": f"{header}.{_b64({**claims, 'lvl': 4})}.{signature}",
        "expired": signed(identity_key, iat=now - 1200, exp=now - 600),
        "wrong key": signed(Ed25519PrivateKey.generate()),
        "wrong audience": signed(identity_key, aud="another-platform"),
        "wrong issuer": signed(identity_key, iss="someone"),
        "alg none": f"{_b64({'alg': 'none', 'kid': kid})}.{_b64(claims)}.",
    }
    with httpx.Client(base_url=platform["base"], timeout=10) as client:
        # The same claims signed properly pass the gateway (identity then judges the made-up
        # session itself, not as a bad token): each refusal below is for one change.
        control = client.get("/api/v1/identity/me", headers=bearer(signed(identity_key)))
        gateway_refusals = ("invalid token", "token expired", "unknown signing key", "algorithm", "malformed")
        assert control.status_code == 200 or not control.json().get("detail", "").startswith(gateway_refusals)
        for name, value in bad.items():
            r = client.get("/api/v1/identity/me", headers=bearer(value))
            assert r.status_code == 401, name
            assert r.headers["content-type"] == PROBLEM, name
            assert r.json()["instance"] == "/api/v1/identity/me", name  # refused by the gateway


def test_oversized_body_is_413(platform):
    with httpx.Client(base_url=platform["base"], timeout=10) as client:
        r = client.post("/api/v1/identity/register", content=b"{" + b" " * 70_000 + b"}",
                        headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM


def test_rate_limit_is_429_with_retry_after(platform):
    with httpx.Client(base_url=platform["base"], timeout=10) as client:
        token = _register_and_login(client, OTHER_PERSON, "13900139000")
        codes = [client.get("/api/v1/identity/me", headers=bearer(token)).status_code for _ in range(30)]
        assert codes.count(200) >= 20 and codes[-1] == 429
        r = client.get("/api/v1/identity/me", headers=bearer(token))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.headers["content-type"] == PROBLEM


def test_signed_pushes_replayed_or_badly_signed_never_reach_the_service(platform):
    recorder: Recorder = platform["recorder"]
    path = "/api/v1/express/callbacks/ems"
    body = json.dumps({"waybill": "EA123456785CN", "status": "delivered"}).encode()
    with httpx.Client(base_url=platform["base"], timeout=10) as client:
        good = signed_headers("ems", EMS_SECRET, "POST", path, body, nonce=uuid.uuid4().hex, timestamp=int(time.time()))
        assert client.post(path, content=body, headers=good).status_code == 200
        assert recorder.seen[-1][1] == "/callbacks/ems" and recorder.seen[-1][3] == body
        seen = len(recorder.seen)
        replay = client.post(path, content=body, headers=good)
        forged = signed_headers("ems", "guess", "POST", path, body, nonce=uuid.uuid4().hex, timestamp=int(time.time()))
        bad = client.post(path, content=body, headers=forged)
        stale_headers = signed_headers("ems", EMS_SECRET, "POST", path, body, nonce=uuid.uuid4().hex,
                                       timestamp=int(time.time()) - 600)  # fmt: skip
        stale = client.post(path, content=body, headers=stale_headers)
        for r in (replay, bad, stale):
            assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
        push = "/api/v1/departments/4401/events"
        dept = signed_headers("dept-4401", DEPT_SECRET, "POST", push, b"{}", nonce=uuid.uuid4().hex,
                              timestamp=int(time.time()))  # fmt: skip
        assert client.post(push, content=b"{}", headers=dept).status_code == 200
    assert len(recorder.seen) == seen + 1
    assert recorder.seen[-1][1] == "/departments/4401/events"


def test_merged_openapi_has_identity(platform):
    with httpx.Client(base_url=platform["base"], timeout=10) as client:
        document = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/identity/me" in document["paths"]
    assert document["paths"]["/api/v1/identity/register"]["post"]["security"] == []
    assert "licence" in document["info"]["x-unavailable-areas"]


def test_stopped_upstream_is_503_problem_within_the_timeout(platform, token):
    with httpx.Client(base_url=platform["base"], timeout=10) as client:
        started = time.monotonic()
        r = client.get("/api/v1/licence/licences", headers=bearer(token))
        assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
        assert time.monotonic() - started < 2
        assert client.get("/readyz").status_code == 503
        _stop(platform["identity"])  # last test: identity goes away
        started = time.monotonic()
        r = client.get("/api/v1/identity/me", headers=bearer(token))
        assert r.status_code in (502, 503) and r.headers["content-type"] == PROBLEM
        assert time.monotonic() - started < 3
