"""Operator tool for the dead-letter stream: list what failed, replay it once fixed.

python -m kit.deadletter --nats nats://127.0.0.1:4222 list
python -m kit.deadletter --nats nats://127.0.0.1:4222 replay 7
python -m kit.deadletter --nats nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222 list

``--nats`` takes what the services' ``*_NATS_URL`` take: one server or a cluster's servers,
comma-separated; any of them may be down.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass

import nats
from nats.js import JetStreamContext

from kit.bus import DEAD_LETTER_STREAM, server_list
from kit.masking import mask_text


@dataclass
class DeadLetter:
    sequence: int
    consumer: str
    original_subject: str
    error: str
    deliveries: int
    data: str


async def list_dead_letters(js: JetStreamContext, limit: int = 100) -> list[DeadLetter]:
    """Every dead letter still in the stream, oldest first."""
    info = await js.stream_info(DEAD_LETTER_STREAM)
    letters: list[DeadLetter] = []
    sequence = info.state.first_seq
    while sequence and sequence <= info.state.last_seq and len(letters) < limit:
        try:
            raw = await js.get_msg(DEAD_LETTER_STREAM, sequence)
        except nats.js.errors.NotFoundError:
            sequence += 1
            continue
        headers = raw.headers or {}
        letters.append(
            DeadLetter(
                sequence=raw.seq or sequence,
                consumer=headers.get("Yiwang-Consumer", ""),
                original_subject=headers.get("Yiwang-Original-Subject", ""),
                error=headers.get("Yiwang-Error", ""),
                deliveries=int(headers.get("Yiwang-Deliveries", "0")),
                data=(raw.data or b"").decode("utf-8", "replace"),
            )
        )
        sequence += 1
    return letters


async def replay_dead_letter(js: JetStreamContext, sequence: int) -> str:
    """Publish a dead letter back to its original subject and remove it from the dead-letter stream.

    The replay gets its own Nats-Msg-Id so JetStream's duplicate window does not swallow it; the
    event id inside is unchanged, so consumers that already applied it skip it through their inbox.
    """
    raw = await js.get_msg(DEAD_LETTER_STREAM, sequence)
    headers = raw.headers or {}
    subject = headers["Yiwang-Original-Subject"]
    await js.publish(subject, raw.data or b"", headers={"Nats-Msg-Id": f"replay:{DEAD_LETTER_STREAM}:{sequence}"})
    await js.delete_msg(DEAD_LETTER_STREAM, sequence)
    return subject


async def _one_line_error(error: Exception) -> None:
    """A server of the list being down is expected (any may be): say so in one line, no traceback."""
    print(f"nats: {type(error).__name__}: {error}", file=sys.stderr)


async def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kit.deadletter")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222", help="a server, or a cluster's comma-separated")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    replay = sub.add_parser("replay")
    replay.add_argument("sequence", type=int)
    args = parser.parse_args(argv)
    nc = await nats.connect(
        server_list(args.nats), connect_timeout=2, max_reconnect_attempts=2, error_cb=_one_line_error
    )
    try:
        js = nc.jetstream()
        if args.command == "list":
            for letter in await list_dead_letters(js):
                row = asdict(letter)
                row["data"] = mask_text(row["data"])[:300]
                print(json.dumps(row, ensure_ascii=False))
        else:
            try:
                subject = await replay_dead_letter(js, args.sequence)
            except nats.js.errors.NotFoundError:
                raise SystemExit(f"no dead letter {args.sequence} (replayed already? see list)") from None
            print(f"replayed {args.sequence} to {subject}")
    except (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError):
        # Seen for a few seconds after a cluster node went down, while its streams elect new leaders.
        raise SystemExit(
            "JetStream did not answer (a stream leader being elected?): try again in a few seconds"
        ) from None
    finally:
        await nc.close()


if __name__ == "__main__":
    asyncio.run(_main())
