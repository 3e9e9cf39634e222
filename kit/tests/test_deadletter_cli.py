"""The operator's dead-letter tool on the command line, given a cluster's server list."""

from __future__ import annotations

import json

import pytest

from kit.bus import Bus, server_list
from kit.deadletter import _main
from kit.natsd import free_port

CONSUMER = "ops-cli-test"


def test_a_server_list_is_split_on_commas_and_blanks_dropped():
    assert server_list("nats://a:4222") == ["nats://a:4222"]
    assert server_list(" nats://a:4222, nats://b:4222,,nats://c:4222 ") == [
        "nats://a:4222",
        "nats://b:4222",
        "nats://c:4222",
    ]


@pytest.fixture
async def js(nats_server):
    bus = Bus(nats_server.url, name="ops-cli-test", streams={"OPSCLI": ["opscli.>"]})
    await bus.start()
    await bus.wait_connected(10)
    js = await bus.jetstream()
    await js.purge_stream("OPSCLI")
    yield js
    await bus.close()


async def test_list_and_replay_take_a_cluster_list_with_a_node_down(js, nats_server, capsys):
    # A cluster's list as the services get it in *_NATS_URL, one node of it not answering.
    servers = f"nats://127.0.0.1:{free_port()}, {nats_server.url}"
    ack = await js.publish(
        f"deadletter.{CONSUMER}",
        b'{"id": "evt-1"}',
        headers={
            "Yiwang-Consumer": CONSUMER,
            "Yiwang-Original-Subject": "opscli.widget.made",
            "Yiwang-Error": "RuntimeError: downstream not ready",
            "Yiwang-Deliveries": "5",
        },
    )

    await _main(["--nats", servers, "list"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    ours = [row for row in rows if row["consumer"] == CONSUMER]
    assert ours == [
        {
            "sequence": ack.seq,
            "consumer": CONSUMER,
            "original_subject": "opscli.widget.made",
            "error": "RuntimeError: downstream not ready",
            "deliveries": 5,
            "data": '{"id": "evt-1"}',
        }
    ]

    await _main(["--nats", servers, "replay", str(ack.seq)])
    assert capsys.readouterr().out.strip() == f"replayed {ack.seq} to opscli.widget.made"
    replayed = await js.get_msg("OPSCLI", (await js.stream_info("OPSCLI")).state.last_seq)
    assert replayed.subject == "opscli.widget.made" and replayed.data == b'{"id": "evt-1"}'
    await _main(["--nats", servers, "list"])
    assert CONSUMER not in capsys.readouterr().out
    with pytest.raises(SystemExit, match=f"no dead letter {ack.seq} "):
        await _main(["--nats", servers, "replay", str(ack.seq)])  # once is all
