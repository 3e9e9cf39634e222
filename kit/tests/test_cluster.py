"""The cluster topology's broker: three nats-servers, streams at R3, a client that fails over."""

from __future__ import annotations

import asyncio

import pytest

from kit.bus import Bus
from kit.natsd import NatsCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cluster")
    with NatsCluster(directory, log_dir=directory) as running:
        yield running


async def _bus(url: str, replicas: int, stream: str) -> Bus:
    bus = Bus(url, name="cluster-test", streams={stream: [f"{stream.lower()}.>"]}, stream_replicas=replicas)
    await bus.start()
    await bus.wait_connected(10)
    return bus


async def test_streams_are_declared_with_three_replicas_and_raised_to_them(cluster):
    low = await _bus(cluster.url, 1, "RAISED")
    try:
        info = await (await low.jetstream()).stream_info("RAISED")
        assert info.config.num_replicas == 1
    finally:
        await low.close()
    bus = await _bus(cluster.url, 3, "RAISED")
    try:
        js = await bus.jetstream()
        info = await js.stream_info("RAISED")
        assert info.config.num_replicas == 3
        assert info.config.subjects == ["raised.>"]
        assert (await js.stream_info("DEADLETTER")).config.num_replicas == 3
    finally:
        await bus.close()


async def _publish(js, subject: str, msg_id: str):
    """A new stream elects its leader, a killed node's streams re-elect: retried for 10 s."""
    for _ in range(40):
        try:
            return await js.publish(subject, b"x", headers={"Nats-Msg-Id": msg_id}, timeout=2)
        except Exception:
            await asyncio.sleep(0.25)
    return None


async def test_a_publish_survives_one_node_killed(cluster):
    bus = await _bus(cluster.url, 3, "SURVIVES")
    victim = cluster.nodes[0]
    try:
        js = await bus.jetstream()
        assert (await _publish(js, "survives.a", "a")).seq == 1
        victim.kill()
        acked = await _publish(js, "survives.b", "b")  # the client reconnects to another node
        assert acked is not None and acked.seq == 2
        # the same id again is a duplicate, not a third message
        again = await _publish(js, "survives.b", "b")
        assert again.duplicate and (await js.stream_info("SURVIVES")).state.messages == 2
    finally:
        victim.start()
        await bus.close()
    await cluster.jetstream_ready()
