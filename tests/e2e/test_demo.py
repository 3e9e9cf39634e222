"""`make demo` (tools/demo.py): every journey line, exit 0 — against the platform the e2e tests
started, and against none (the demo starts its own and stops it again)."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from kit.natsd import free_port
from kit.subject_ids import validate_id_number
from tools.demo import new_id_number

REPO = Path(__file__).resolve().parents[2]
JOURNEYS = ("J1", "J2", "J3", "J4", "J5", "J6", "J7")


def run_demo(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-u", "-m", "tools.demo", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def journey_lines(output: str) -> dict[str, list[str]]:
    lines: dict[str, list[str]] = {}
    for line in output.splitlines():
        match = re.match(r"^(J\d)\s", line)
        if match:
            lines.setdefault(match.group(1), []).append(line)
    return lines


def test_new_id_numbers_are_valid_and_confirmed_by_the_sandbox_registry():
    rng = random.Random(7)
    numbers = [new_id_number(rng) for _ in range(500)]
    assert all(validate_id_number(n) == n for n in numbers)
    assert not any(n[14:17] in {"998", "999"} for n in numbers)  # the sandbox registry's refusals
    assert len(set(numbers)) == len(numbers)


def test_the_demo_plays_every_journey_against_a_running_platform(running_platform):
    first = run_demo("--gateway", running_platform["gateway"])
    assert first.returncode == 0, first.stdout + first.stderr
    lines = journey_lines(first.stdout)
    assert set(lines) == set(JOURNEYS), first.stdout
    assert "is running at" in first.stdout and "starting the platform" not in first.stdout
    assert not any("FAILED" in line for group in lines.values() for line in group), first.stdout
    assert any("case" in line and "query code sent by SMS" in line for line in lines["J1"]), lines["J1"]
    assert any("signed_for" in line or "returned the parcel" in line for line in lines["J2"]), lines["J2"]
    assert any("404 and 404" in line for line in lines["J7"]), lines["J7"]
    assert any("SKIPPED" in line or "duplicate: true" in line for line in lines["J6"]), lines["J6"]
    assert re.search(r"all journeys done in \d+\.\d s", first.stdout)
    # again, on the same platform: new people, new cases, the same outcome
    again = run_demo("--gateway", running_platform["gateway"])
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
