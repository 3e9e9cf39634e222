"""The chaos run's reconciliation: what the platform promised (2xx) and what its events did,
counted straight from the databases (asyncpg) and the streams (nats-py), after the outboxes and
the consumers have drained.

Lost: a 2xx not found in its database; a committed outbox event not in its stream; an event of
a type a consumer applies without that consumer's inbox row; an event dead-lettered; an outbox row
still unpublished. Doubled: an idempotent request answered with two different results; a
natural key (case per idempotency key, officer action per case, push per event id, licence per
case, shipment per case, warning per case and step) held twice; an event id twice in its stream.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import asyncpg
import nats
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from kit.bus import server_list
from kit.events import nats_subject_for
from tools.chaos_load import Promises

QUIET_ROUNDS = 3  # consecutive looks with nothing pending before the counting starts
QUIET_POLL = 2.0
# Durable consumers are named after the service whose database holds their inbox (caseflow-…).
CONSUMER_SERVICES = ("caseflow", "licence", "express", "exchange", "identity", "catalog")


@dataclass
class Check:
    name: str
    counted: int
    lost: int = 0
    doubled: int = 0
    note: str = ""


async def fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def outbox_pending(databases: dict[str, str]) -> dict[str, int]:
    return {name: (await fetch(url, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL"))[0]["n"]
            for name, url in databases.items()}  # fmt: skip


async def consumers_pending(js) -> dict[str, int]:
    """Per durable consumer: messages not yet delivered plus delivered and not yet acked."""
    pending = {}
    for stream in await js.streams_info():
        for consumer in await js.consumers_info(stream.config.name):
            if consumer.config.durable_name:
                pending[consumer.config.durable_name] = (consumer.num_pending or 0) + (consumer.num_ack_pending or 0)
    return pending


async def wait_quiet(databases: dict[str, str], js, timeout: float) -> tuple[str, dict[str, int]]:
    """Until nothing is pending anywhere for QUIET_ROUNDS looks in a row, or ``timeout``: how it
    went, and each outbox's unpublished rows at the last look."""
    started = time.monotonic()
    quiet = 0
    outbox: dict[str, int] = {}
    consumers: dict[str, int] = {}
    while time.monotonic() - started < timeout:
        try:
            outbox = await outbox_pending(databases)
            consumers = await consumers_pending(js)
        except Exception as exc:  # the cluster or the database still coming back
            outbox, consumers = {name: 1 for name in databases}, {type(exc).__name__: 1}
        busy = sum(outbox.values()) + sum(consumers.values())
        quiet = quiet + 1 if busy == 0 else 0
        if quiet >= QUIET_ROUNDS:
            return f"drained in {time.monotonic() - started:.0f} s", outbox
        await asyncio.sleep(QUIET_POLL)
    still = {k: v for k, v in {**outbox, **consumers}.items() if v}
    return f"NOT drained after {timeout:.0f} s: {still}", outbox


async def stream_messages(js, stream: str) -> list[tuple[int, str, str]]:
    """Every message of ``stream``: (sequence, subject, Nats-Msg-Id), read one by one by sequence (a read
    that cannot be lost to a consumer's leader election right after the cluster came back)."""
    state = (await js.stream_info(stream)).state
    found: list[tuple[int, str, str]] = []
    for sequence in range(state.first_seq, state.last_seq + 1) if state.messages else ():
        for attempt in range(20):
            try:
                message = await js.get_msg(stream, sequence)
            except NotFoundError:
                break  # deleted: streams here keep everything, but a gap is not ours to count
            except (NatsError, TimeoutError):
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            found.append((sequence, message.subject, (message.headers or {}).get("Nats-Msg-Id", "")))
            break
        else:
            raise RuntimeError(f"stream {stream}: message {sequence} could not be read")
    return found


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcards: ``*`` one token, ``>`` the rest."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


async def reconcile(
    databases: dict[str, str], nats_url: str, promises: Promises, *, timeout: float
) -> tuple[list[Check], str]:
    """Wait for the drain, then every check; (checks, how the drain went)."""
    nc = await nats.connect(server_list(nats_url), connect_timeout=2, max_reconnect_attempts=-1)
    try:
        js = nc.jetstream()
        drained, pending = await wait_quiet(databases, js, timeout)
        checks = await promise_checks(databases, promises)
        checks += await event_checks(databases, js, pending)
        checks += await double_checks(databases)
    finally:
        await nc.close()
    return checks, drained


async def promise_checks(db: dict[str, str], p: Promises) -> list[Check]:
    """Every 2xx in its database."""
    checks = []
    people = {r["id_number"]: r["level"] for r in await fetch(db["identity"], "SELECT id_number, level FROM persons")}
    checks.append(Check("people registered (201)", len(p.people), lost=len(p.people - people.keys())))
    checks.append(Check("real-name verified (200)", len(p.verified),
                        lost=sum(1 for i in p.verified if people.get(i, 0) < 2)))  # fmt: skip
    blobs = {r["id"] for r in await fetch(db["caseflow"], "SELECT id FROM blobs")}
    checks.append(Check("materials uploaded (201)", len(p.blobs), lost=len(p.blobs - blobs)))

    cases = await fetch(db["caseflow"], "SELECT id, case_no, idempotency_key, department_case_id FROM cases")
    case_nos = {r["case_no"] for r in cases}
    answered = {n for numbers in p.cases.values() for n in numbers}
    two_answers = sum(1 for numbers in p.cases.values() if len(numbers) > 1)
    checks.append(Check("cases submitted (201/200)", len(p.cases), lost=len(answered - case_nos), doubled=two_answers,
                        note="doubled: one Idempotency-Key answered with two case numbers"))  # fmt: skip

    events = await fetch(
        db["caseflow"], "SELECT c.case_no, e.action FROM case_events e JOIN cases c ON c.id = e.case_id"
    )
    done = Counter((r["case_no"], r["action"]) for r in events)
    promised = set(p.actions)
    checks.append(Check("officer actions (200)", len(promised), lost=sum(1 for a in promised if not done[a]),
                        doubled=sum(1 for a in promised if done[a] > 1),
                        note="doubled: the same action twice in one case's timeline"))  # fmt: skip

    pushes = await fetch(db["exchange"], "SELECT event_id, status FROM pushes WHERE department = 'BDCDJ'")
    status = {r["event_id"]: r["status"] for r in pushes}
    unsettled = sum(1 for e in p.pushes if status.get(e) == "received")
    checks.append(Check("department pushes (200)", len(p.pushes), lost=len(p.pushes - status.keys()) + unsettled,
                        note=f"{unsettled} still unsettled" if unsettled else "each settled"))  # fmt: skip
    mirrored = Counter(r["department_case_id"] for r in cases if r["department_case_id"])
    checks.append(Check("department cases mirrored", len(p.mirrored),
                        lost=sum(1 for d in p.mirrored if not mirrored[d]),
                        doubled=sum(1 for d in p.mirrored if mirrored[d] > 1)))  # fmt: skip

    licences = await fetch(db["licence"], "SELECT case_no, number, source FROM licences")
    by_number = Counter(r["number"] for r in licences if r["source"] == "department")
    checks.append(Check("department certificates", len(p.certificates),
                        lost=sum(1 for n in p.certificates if not by_number[n]),
                        doubled=sum(1 for n in p.certificates if by_number[n] > 1)))  # fmt: skip
    by_case = Counter(r["case_no"] for r in licences if r["case_no"])
    checks.append(Check("licence per approved case", len(p.approved),
                        lost=sum(1 for c in p.approved if not by_case[c]),
                        doubled=sum(1 for c in p.approved if by_case[c] > 1)))  # fmt: skip
    shipments = Counter(r["case_no"] for r in await fetch(db["express"],
                                                          "SELECT case_no FROM shipments WHERE kind = 'deliver'"))  # fmt: skip
    checks.append(Check("EMS shipment per approved case", len(p.approved),
                        lost=sum(1 for c in p.approved if not shipments[c]),
                        doubled=sum(1 for c in p.approved if shipments[c] > 1)))  # fmt: skip
    return checks


async def event_checks(db: dict[str, str], js, pending: dict[str, int]) -> list[Check]:
    """Outboxes drained; each committed event once in its stream; each applied once per consumer.

    Read in the order that makes the counts exact while late events still flow (the carrier's
    tracking pushes): the consumers' ack floors, then the inboxes (a message is acked only after
    its inbox row committed), then the outboxes, then the streams (a row published before the
    outbox was read is in the stream by then). Later messages are left out, never counted lost."""
    checks = [Check(f"outbox {name}: unpublished at the drain", pending.get(name, 0), lost=pending.get(name, 0))
              for name in db]  # fmt: skip
    streams = [info.config.name for info in await js.streams_info()]
    floors = {c.config.durable_name: (stream, c.config.filter_subject or ">", c.ack_floor.stream_seq if c.ack_floor else 0)
              for stream in streams for c in await js.consumers_info(stream) if c.config.durable_name}  # fmt: skip
    inboxes: dict[str, Counter[str]] = defaultdict(Counter)
    handled: dict[str, set[str]] = defaultdict(set)
    for service in CONSUMER_SERVICES:
        if service in db:
            for r in await fetch(db[service], "SELECT consumer, event_id, event_type FROM inbox"):
                inboxes[r["consumer"]][r["event_id"]] += 1
                handled[r["consumer"]].add(nats_subject_for(r["event_type"]))
    outboxes = {name: await fetch(url, "SELECT event_id FROM outbox WHERE published_at IS NOT NULL")
                for name, url in db.items()}  # fmt: skip
    messages = {name: await stream_messages(js, name) for name in streams}
    for name, rows in outboxes.items():
        stream = name.upper()
        ids = Counter(msg_id for _, _, msg_id in messages.get(stream, []))
        published = {r["event_id"] for r in rows}
        checks.append(Check(f"stream {stream}: published events", len(published),
                            lost=sum(1 for e in published if not ids[e]),
                            doubled=sum(1 for count in ids.values() if count > 1)))  # fmt: skip
    dead = messages.get("DEADLETTER", [])
    checks.append(Check("dead-lettered events", len(dead), lost=len(dead)))
    for durable, (stream, pattern, floor) in floors.items():
        if durable.split("-", 1)[0] not in db:
            continue
        # The event types it applies: those in its inbox (other types are acked without a row).
        wanted = [msg_id for sequence, subject, msg_id in messages.get(stream, [])
                  if sequence <= floor and subject in handled[durable] and subject_matches(pattern, subject)]  # fmt: skip
        applied = inboxes[durable]
        later = sum(
            1
            for sequence, subject, _ in messages.get(stream, [])
            if sequence > floor and subject_matches(pattern, subject)
        )
        checks.append(Check(f"inbox {durable}", len(wanted), lost=sum(1 for e in wanted if not applied[e]),
                            doubled=sum(1 for count in applied.values() if count > 1),
                            note=f"{later} later message(s) not yet acked" if later else ""))  # fmt: skip
    return checks


async def double_checks(db: dict[str, str]) -> list[Check]:
    """Natural keys held twice, whoever asked."""
    queries = (
        ("caseflow", "cases per applicant + Idempotency-Key",
         "SELECT count(*) AS n FROM cases WHERE idempotency_key IS NOT NULL GROUP BY applicant, idempotency_key"),
        ("caseflow", "supervision warnings per case, step, level",
         "SELECT count(*) AS n FROM supervision_warnings GROUP BY case_id, step, level"),
        ("caseflow", "case licences per identifier", "SELECT count(*) AS n FROM case_licences GROUP BY identifier"),
        ("licence", "licences per case and type",
         "SELECT count(*) AS n FROM licences WHERE case_no IS NOT NULL GROUP BY case_no, type_code"),
        ("express", "shipments per case, kind, pickup",
         "SELECT count(*) AS n FROM shipments GROUP BY case_no, kind, pickup_key"),
        ("exchange", "pushes per department event", "SELECT count(*) AS n FROM pushes GROUP BY department, event_id"),
    )  # fmt: skip
    checks = []
    for service, name, query in queries:
        groups = [r["n"] for r in await fetch(db[service], query)]
        checks.append(Check(name, len(groups), doubled=sum(1 for n in groups if n > 1)))
    return checks
