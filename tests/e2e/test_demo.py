"""`make demo` (tools/demo.py): every journey line, exit 0 — against a platform started here, twice,
and against none (the demo starts its own and stops it again); its J6 against a stand-in.

The platform is this module's own, not the session's ``running_platform``: J3 binds the sandbox
register's restaurant company as 王五, whom tests/e2e/test_journeys.py registers itself."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kit.natsd import free_port
from kit.signing import verify
from kit.subject_ids import validate_id_number
from tools.demo import Demo, Person, Skipped, StepFailed, j6_department_system, new_id_number

REPO = Path(__file__).resolve().parents[2]
JOURNEYS = ("J1", "J2", "J3", "J4", "J5", "J6", "J7", "J9", "J10")


@pytest.fixture(scope="module")
def demo_platform(tmp_path_factory):
    """`make run` (tools.run) on free ports and a throwaway directory, as tests/e2e/conftest.py starts it."""
    data = tmp_path_factory.mktemp("demo-platform")
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "tools.run", "--free-ports", "--data-dir", str(data)],
        cwd=REPO, env={**os.environ, "YIWANG_NATS_URL": "", "EMS_SANDBOX_STEP_SECONDS": "1",
                                  "EMS_SANDBOX_SEED": "20261201"},  # the parcels' journeys as before: reproducible
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    gateway = ""
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("make run exited:\n" + "".join(lines))
            lines.append(line)
            match = re.match(r"^gateway\s+(http://127\.0\.0\.1:\d+)\s", line)
            gateway = match.group(1) if match else gateway
            if "Ctrl-C stops everything" in line:
                break
        else:
            raise TimeoutError("make run did not become ready:\n" + "".join(lines))
        yield gateway
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # tools.run stops its children, as on Ctrl-C
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run_demo(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-u", "-m", "tools.demo", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def journey_lines(output: str) -> dict[str, list[str]]:
    lines: dict[str, list[str]] = {}
    for line in output.splitlines():
        match = re.match(r"^(J\d+)\s", line)
        if match:
            lines.setdefault(match.group(1), []).append(line)
    return lines


def test_new_id_numbers_are_valid_and_confirmed_by_the_sandbox_registry():
    rng = random.Random(7)
    numbers = [new_id_number(rng) for _ in range(500)]
    assert all(validate_id_number(n) == n for n in numbers)
    assert not any(n[14:17] in {"998", "999"} for n in numbers)  # the sandbox registry's refusals
    assert len(set(numbers)) == len(numbers)


def test_the_demo_plays_every_journey_against_a_running_platform(demo_platform):
    first = run_demo("--gateway", demo_platform)
    assert first.returncode == 0, first.stdout + first.stderr
    lines = journey_lines(first.stdout)
    assert set(lines) == set(JOURNEYS), first.stdout
    assert "is running at" in first.stdout and "starting the platform" not in first.stdout
    assert not any("FAILED" in line for group in lines.values() for line in group), first.stdout
    assert any("case" in line and "query code sent by SMS" in line for line in lines["J1"]), lines["J1"]
    assert any("signed_for" in line or "returned the parcel" in line for line in lines["J2"]), lines["J2"]
    assert any("404 and 404" in line for line in lines["J7"]), lines["J7"]
    assert any("SKIPPED" in line or "duplicate: true" in line for line in lines["J6"]), lines["J6"]
    # J9: the booking's SMS, the queue (in opening hours) or the machine's refusal (outside them), the
    # counter case helped by the window, 统一窗口出件, the kiosk's PDF and its unsigned token refused
    j9 = "\n".join(lines["J9"])
    assert "签到码******" in j9 and re.search(r"queue number A\d{3}|→ 40[49] (too_early|unknown)", j9), j9
    assert "channel counter" in j9 and "helped by 一窗受理窗口" in j9 and "统一窗口出件) → completed" in j9, j9
    assert "starts with %PDF" in j9 and "without the kiosk's signature (a copied token) → 401" in j9, j9
    # J10: prefill, the guide's fee paid through the sandbox, e-receipt, 秒批 by its rule, 高龄津贴 at once
    j10 = "\n".join(lines["J10"])
    assert "(零填报)" in j10 and "uscc=92340602MA2PBMEM24" in j10 and "¥10.00" in j10, j10
    assert re.search(r"e-receipt 3701\d{14}", j10) and "by rule renewal-unchanged" in j10, j10
    assert "approved within the submit request, by rule age-80-dezhou" in j10, j10
    assert re.search(r"all journeys done in \d+\.\d s", first.stdout)
    # again, on the same platform: new people, new cases, the same outcome
    again = run_demo("--gateway", demo_platform)
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(journey_lines(again.stdout)) == set(JOURNEYS)


def test_the_demo_starts_a_platform_when_none_runs_and_stops_it_again():
    nothing_here = f"http://127.0.0.1:{free_port()}"
    result = run_demo("--gateway", nothing_here)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "starting the platform" in result.stdout and "demo: stopped." in result.stdout
    assert set(journey_lines(result.stdout)) == set(JOURNEYS), result.stdout
    started = re.search(r"platform ready in \d+ s, gateway (http://127\.0\.0\.1:\d+)", result.stdout)
    assert started, result.stdout
    try:
        answer = httpx.get(started.group(1) + "/readyz", timeout=2).status_code
    except httpx.HTTPError:
        answer = None
    assert answer is None, f"the platform the demo started still answers at {started.group(1)}"


class _ReadyButEmpty(BaseHTTPRequestHandler):
    """A "gateway" that is ready and knows no route: every journey step gets a 404."""

    def _answer(self) -> None:
        ready = self.path == "/readyz"
        body = b'{"status": "ok"}' if ready else b'{"title": "Not found", "status": 404}'
        self.send_response(200 if ready else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):  # quiet
        pass


def test_a_failed_step_says_what_happened_and_exits_1():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ReadyButEmpty)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_demo("--gateway", f"http://127.0.0.1:{server.server_port}", timeout=120)
    finally:
        server.shutdown()
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"^J1\s+FAILED: .+answered 404", result.stdout, re.M), result.stdout
    assert "demo failed in J1" in result.stdout and "J2" not in journey_lines(result.stdout)


class _StandInPlatform:
    """Just what J6 touches, as contracts/departments.py and ADR 0003 describe it: signed pushes
    (HMAC, nonces remembered, idempotent by event id) answered with EdDSA-signed receipts, the
    mirrored case in the applicant's list and the certificate in their wallet. Until exchange runs
    in `make run`, this is what exercises the demo's J6 code."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.key = Ed25519PrivateKey.generate()
        self.nonces: set[str] = set()
        self.pushes: dict[str, dict] = {}
        self.cases: dict[str, dict] = {}
        self.wallet: list[dict] = []

    def jwks(self) -> dict:
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": "rcpt-test", "use": "sig", "alg": "EdDSA"}]}

    def push(self, request: httpx.Request) -> httpx.Response:
        body, headers, path = request.content, request.headers, request.url.raw_path.decode()
        if not verify([self.secret], "POST", path, headers["x-timestamp"], headers["x-nonce"], body,
                      headers["x-signature"]) or headers["x-partner-id"] != "dept-bdcdj":  # fmt: skip
            return httpx.Response(401, json={"title": "bad signature"})
        if headers["x-nonce"] in self.nonces:
            return httpx.Response(401, json={"title": "replay", "reason": "replay"})
        self.nonces.add(headers["x-nonce"])
        push = json.loads(body)
        known = self.pushes.get(push["event_id"])
        duplicate = known is not None
        if known is None:
            known = self.pushes[push["event_id"]] = {
                "receipt_id": f"push-{len(self.pushes) + 1}", "department": "BDCDJ", "partner": "dept-bdcdj",
                "event_id": push["event_id"], "type": push["type"], "received_at": "2026-12-01T08:00:00.000001+08:00",
                "body_sha256": hashlib.sha256(body).hexdigest(),
            }  # fmt: skip
            self.apply(push)
        receipt = {**known, "duplicate": duplicate}
        signature = jwt.encode(receipt, self.key, algorithm="EdDSA", headers={"kid": "rcpt-test"})
        return httpx.Response(200, json={**receipt, "signature": signature})

    def apply(self, push: dict) -> None:
        data = push["data"]
        if push["type"] == "case.progress":
            case = self.cases.setdefault(data["department_case_id"], {
                "case_no": f"BDC{len(self.cases) + 1:06d}", "matter": {"code": data["matter_code"], "version": 1,
                "name": "不动产转移登记"}, "department": "BDCDJ", "state": "received", "version": 1,
                "due_on": "2026-12-08", "query_code": "K7Q2M9", "steps": []})  # fmt: skip
            case["state"] = data["step"]
            case["steps"].append({"at": push["occurred_at"], "action": data["step"], "to_state": data["step"]})
        else:
            self.wallet.append({"identifier": f"1.2.156.test.{len(self.wallet) + 1}", "number": data["number"],
                                "licence_type": data["licence_type"], "status": "valid"})  # fmt: skip

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v1")
        if path == "/exchange/.well-known/jwks.json":
            return httpx.Response(200, json=self.jwks())
        if path == "/departments/BDCDJ/events" and request.method == "POST":
            return self.push(request)
        if path == "/caseflow/cases":
            return httpx.Response(200, json={"items": list(self.cases.values()), "total": len(self.cases)})
        if path.startswith("/caseflow/cases/"):
            case = next(c for c in self.cases.values() if c["case_no"] == path.rsplit("/", 1)[1])
            return httpx.Response(200, json=case)
        if path.startswith("/caseflow/progress/"):
            case = next(c for c in self.cases.values() if c["case_no"] == path.rsplit("/", 1)[1])
            assert request.url.params["code"] == case["query_code"]
            return httpx.Response(200, json={"state": case["state"], "steps": case["steps"]})
        if path == "/licence/licences":
            return httpx.Response(200, json={"items": self.wallet, "total": len(self.wallet)})
        return httpx.Response(404, json={"title": "Not found"})


def _demo_with(handler) -> Demo:
    client = httpx.Client(base_url="http://gateway.test/api/v1", transport=httpx.MockTransport(handler))
    lines: list[str] = []
    demo = Demo(client, out=lines.append)
    demo.journey = "J6"
    demo.state["zhang"] = Person("张三", new_id_number(demo.rng), "13800000000", {"Authorization": "Bearer x"})
    demo.lines = lines  # type: ignore[attr-defined]
    return demo


def test_j6_pushes_gets_verified_receipts_and_a_replay_changes_nothing_on_a_stand_in():
    platform = _StandInPlatform("make-run-only-bdcdj-partner-secret")
    demo = _demo_with(platform)
    j6_department_system(demo)
    said = "\n".join(demo.lines)
    assert "pushes case.progress 'received'" in said and "K7Q2M9" not in said  # the query code is never shown
    assert "received → accepted" in said  # the progress page
    assert "duplicate: true" in said and "verifies the receipt's signature" in said
    assert len(platform.pushes) == 3 and len(platform.wallet) == 1  # the forged push stored nothing


def test_j6_is_a_failure_when_the_receipt_signature_does_not_verify():
    platform = _StandInPlatform("make-run-only-bdcdj-partner-secret")
    platform.jwks = lambda: {"keys": [{**_StandInPlatform("x").jwks()["keys"][0]}]}  # another key, same kid
    with pytest.raises(StepFailed, match="signature does not verify"):
        j6_department_system(_demo_with(platform))


def test_j6_is_skipped_without_an_exchange_area():
    demo = _demo_with(lambda request: httpx.Response(404, json={"title": "Not found"}))
    with pytest.raises(Skipped, match="no exchange area"):
        j6_department_system(demo)
