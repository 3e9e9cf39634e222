"""`make run` works: ``python -m tools.run --check`` starts everything, reports, stops, leaves nothing."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_check(data_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in {"YIWANG_NATS_URL", "YIWANG_DATA_DIR"}}
    return subprocess.run(
        [sys.executable, "-m", "tools.run", "--check", "--data-dir", str(data_dir), *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def table_rows(output: str) -> dict[str, list[str]]:
    rows = {}
    for line in output.splitlines():
        cells = line.split()
        if len(cells) >= 3 and re.fullmatch(r"(nats|http)://127\.0\.0\.1:\d+", cells[1]):
            rows[cells[0]] = cells
    return rows


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped by its (new) parent.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line or environment names ``text`` (our data dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def assert_nothing_left(output: str, data_dir: Path) -> None:
    time.sleep(0.2)
    for name, cells in table_rows(output).items():
        if cells[2].isdigit():
            assert not alive(int(cells[2])), f"{name} (pid {cells[2]}) is still running"
    if Path("/proc").is_dir():
        assert processes_mentioning(str(data_dir)) == []


def test_check_starts_everything_and_leaves_nothing(tmp_path):
    data_dir = tmp_path / "data"
    result = run_check(data_dir, "--free-ports")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = table_rows(result.stdout)
    assert re.search(r"^identity\s+http://127\.0\.0\.1:\d+\s", result.stdout, re.MULTILINE), output
    assert "nats" in rows
    assert (data_dir / "logs" / "identity.log").stat().st_size > 0
    assert (data_dir / "logs" / "nats.log").exists()
    assert (data_dir / "identity.db").exists(), "identity was not migrated onto SQLite under the data dir"
    assert_nothing_left(result.stdout, data_dir)


def test_busy_preferred_ports_are_replaced_by_free_ones(tmp_path):
    """Every preferred port is one we hold; run must still work and say what it did."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        config = (REPO / "platform.toml").read_text(encoding="utf-8")
        config = re.sub(r"(?m)^port = \d+", f"port = {busy}", config)
        (tmp_path / "platform.toml").write_text(config, encoding="utf-8")
        data_dir = tmp_path / "data"
        result = run_check(data_dir, "--config", str(tmp_path / "platform.toml"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = table_rows(result.stdout)
    assert rows, output
    for name, cells in rows.items():
        assert not cells[1].endswith(f":{busy}"), f"{name} took the busy port"
        assert f"{busy} busy" in " ".join(cells[4:]), f"{name}: the fallback is not reported"
    assert_nothing_left(result.stdout, data_dir)


def test_sigterm_stops_everything(tmp_path):
    """The long-running mode (no --check) stops all children on SIGTERM, nats last."""
    data_dir = tmp_path / "data"
    env = {key: value for key, value in os.environ.items() if key not in {"YIWANG_NATS_URL", "YIWANG_DATA_DIR"}}
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.run", "--free-ports", "--data-dir", str(data_dir)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C stops everything"):
                break
        assert lines and lines[-1].startswith("Ctrl-C"), "".join(lines)
        process.terminate()
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines) + rest
    assert process.returncode == 0, output
    assert "stopped." in output
    assert_nothing_left(output, data_dir)


@pytest.mark.parametrize("bad", ["[[service]]\nname = 'x'\n"])
def test_bad_config_fails_clearly(tmp_path, bad):
    (tmp_path / "platform.toml").write_text(bad)
    result = run_check(tmp_path / "data", "--config", str(tmp_path / "platform.toml"))
    assert result.returncode != 0
    assert "platform.toml" in result.stderr


def test_workers_come_from_platform_toml_and_yiwang_workers_and_never_for_the_gateway(tmp_path):
    from tools.platform import load  # noqa: PLC0415
    from tools.run import Failure, worker_counts  # noqa: PLC0415

    config = (REPO / "platform.toml").read_text(encoding="utf-8")
    (tmp_path / "platform.toml").write_text(
        config.replace('name = "catalog"\n', 'name = "catalog"\nworkers = 3\n'), encoding="utf-8"
    )
    platform = load(tmp_path / "platform.toml")
    counts = worker_counts(platform, " caseflow=2, identity = 4 ,")
    assert (counts["caseflow"], counts["identity"], counts["catalog"], counts["licence"]) == (2, 4, 3, 1)
    for override, rule in [
        ("casefow=2", "no service named 'casefow'"),
        ("caseflow=0", "whole number of workers, at least 1"),
        ("caseflow=two", "whole number of workers, at least 1"),
        ("gateway=2", "nonces are remembered per process"),
    ]:
        with pytest.raises(Failure, match=rule):
            worker_counts(platform, override)


def test_a_service_runs_with_two_workers_on_sqlite_with_a_warning(tmp_path, monkeypatch):
    """make run with YIWANG_WORKERS: identity alone, two uvicorn workers on its SQLite file."""
    config = (REPO / "platform.toml").read_text(encoding="utf-8")
    head, *blocks = re.split(r"(?m)^\[\[service\]\]$", config)
    identity = next(block for block in blocks if 'name = "identity"' in block)
    (tmp_path / "platform.toml").write_text(head + "[[service]]" + identity, encoding="utf-8")
    monkeypatch.setenv("YIWANG_WORKERS", "identity=2")
    data_dir = tmp_path / "data"
    result = run_check(data_dir, "--free-ports", "--config", str(tmp_path / "platform.toml"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "identity: 2 workers share one SQLite file" in result.stdout
    assert "2 workers" in " ".join(table_rows(result.stdout)["identity"][4:])
    log = (data_dir / "logs" / "identity.log").read_text()
    assert log.count("Started server process") == 2, log[-2000:]
    assert_nothing_left(result.stdout, data_dir)


def test_the_gateway_is_refused_a_second_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("YIWANG_WORKERS", "gateway=2")
    result = run_check(tmp_path / "data", "--free-ports")
    assert result.returncode == 1
    assert "gateway: one worker only" in result.stderr
