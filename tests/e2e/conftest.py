"""The whole platform as `make run` starts it (tools.run), on free ports and a throwaway data
directory, with its own nats-server: the journeys run against exactly what a developer gets."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def running_platform(tmp_path_factory):
    data = tmp_path_factory.mktemp("platform")
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "tools.run", "--free-ports", "--data-dir", str(data)],
        cwd=REPO,
        # The sandbox carrier delivers every parcel, quickly; duplicated and reordered pushes stay on.
        env={
            **os.environ,
            "YIWANG_NATS_URL": "",
            "EMS_SANDBOX_STEP_SECONDS": "1",
            "EMS_SANDBOX_SEED": "20261201",  # reproducible parcels (make run draws a new seed each start)
            "EMS_SANDBOX_REFUSAL_RATE": "0",
            "EMS_SANDBOX_FAILURE_RATE": "0",
            "EMS_SANDBOX_RETURN_RATE": "0",
            # The registration centre's sandbox system answers within a second; a delivery it missed
            # while down is tried again within seconds, not the deployment's minutes (ADR 0020).
            "BDCDJ_SANDBOX_STEP_SECONDS": "1",
            "EXCHANGE_RETRY_SCHEDULE_SECONDS": "[1, 1, 2, 2, 60]",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    urls: dict[str, str] = {}
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("make run exited:\n" + "".join(lines))
            lines.append(line)
            match = re.match(r"^([\w-]+)\s+(http://127\.0\.0\.1:\d+)\s", line)
            if match:
                urls[match.group(1)] = match.group(2)
            if "Ctrl-C stops everything" in line:
                break
        else:
            raise TimeoutError("make run did not become ready:\n" + "".join(lines))
        yield {"urls": urls, "gateway": urls["gateway"], "data": data, "output": "".join(lines)}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
