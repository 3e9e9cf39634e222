"""Applicant notifications leave through the gateway adapter: sent once, retried with backoff,
given up visibly, never sent twice by racing dispatchers or lost by a dying one, signed over HTTP,
and logged with recipients masked."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from sqlalchemy import insert, select

from kit.natsd import free_port
from services.caseflow.models import Notification
from services.caseflow.notifications import (
    GatewayError,
    HttpSmsGateway,
    NotificationDispatcher,
    OutgoingMessage,
    SandboxGateway,
    make_gateway,
)
from services.caseflow.settings import Settings
from services.caseflow.tests.conftest import ZHANG_SAN, submit

PHONE = "13800138000"
MESSAGE = OutgoingMessage("42", ZHANG_SAN, "sms", "accept", "您的办件320800202611020001已受理。", PHONE)


class Clock:
    """The dispatcher's now; tests move it instead of waiting out backoffs."""

    def __init__(self) -> None:
        self.value = datetime(2026, 11, 2, 2, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)


async def own_dispatcher_only(client):
    """Stop the app's dispatcher so the test's own one is the only sender; the app's sessionmaker."""
    await client.app.state.notification_dispatcher.stop()
    return client.app.state.sessionmaker


def dispatcher(maker, gateway, clock: Clock, **options) -> NotificationDispatcher:
    return NotificationDispatcher(maker, gateway, clock=clock, rng=random.Random(7), **options)


async def stored(maker) -> list[Notification]:
    async with maker() as session:
        return list((await session.execute(select(Notification).order_by(Notification.id))).scalars())


async def eventually(check, *, timeout: float = 10.0):
    """Poll ``check`` (sync or async) until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.02)


async def drain(sender: NotificationDispatcher) -> None:
    for _ in range(1000):
        if (await sender.dispatch_once()).claimed == 0:
            return
    raise AssertionError("the dispatcher kept finding rows")


# ---- the dispatcher with the sandbox gateway --------------------------------------------------
async def test_the_service_sends_a_submitted_case_notification_once(caseflow):
    running = caseflow.app.state.notification_dispatcher
    gateway = caseflow.app.state.sms_gateway
    assert isinstance(gateway, SandboxGateway)  # the default adapter
    case = await submit(caseflow)
    running.wake()

    async def listed_as_sent():
        listed = (await caseflow.get("/sandbox/notifications", params={"case_no": case["case_no"]})).json()
        return listed if listed and listed[0]["sent_at"] else None

    [listed] = await eventually(listed_as_sent)
    [row] = await stored(caseflow.app.state.sessionmaker)
    assert row.sent_at is not None and row.attempts == 1 and row.last_error is None
    assert listed["gateway_message_id"] == row.gateway_message_id
    assert list(gateway.calls) == [str(row.id)]
    [delivered] = gateway.delivered
    assert (delivered.message.client_ref, delivered.gateway_message_id) == (str(row.id), row.gateway_message_id)
    assert delivered.message.recipient == ZHANG_SAN and case["query_code"] in delivered.message.text
    # Later rounds, of this dispatcher or another, find nothing to send.
    assert (await running.dispatch_once()).claimed == 0
    assert (await dispatcher(caseflow.app.state.sessionmaker, SandboxGateway(), Clock()).dispatch_once()).claimed == 0
    assert list(gateway.calls) == [str(row.id)]


async def test_a_gateway_failing_twice_then_succeeding_sends_once_after_backoff(caseflow):
    maker = await own_dispatcher_only(caseflow)
    gateway, clock = SandboxGateway(fail_first=2, seed=1), Clock()
    sender = dispatcher(maker, gateway, clock, base_backoff=10, backoff_factor=3)
    await submit(caseflow)

    first = await sender.dispatch_once()
    assert (first.claimed, first.sent, first.failed) == (1, 0, 1)
    [row] = await stored(maker)
    assert row.sent_at is None and row.attempts == 1 and "simulated failure" in row.last_error
    assert clock() + timedelta(seconds=8) <= row.next_attempt_at <= clock() + timedelta(seconds=12)  # 10 s ± 20 %
    assert (await sender.dispatch_once()).claimed == 0  # not before its backoff

    clock.advance(12)
    assert (await sender.dispatch_once()).failed == 1
    [row] = await stored(maker)
    assert row.attempts == 2 and row.next_attempt_at >= clock() + timedelta(seconds=24)  # 30 s ± 20 %

    clock.advance(36)
    third = await sender.dispatch_once()
    assert (third.claimed, third.sent, third.failed) == (1, 1, 0)
    [row] = await stored(maker)
    assert row.sent_at == clock() and row.attempts == 3 and row.next_attempt_at is None
    assert "simulated failure" in row.last_error  # the history stays
    [delivered] = gateway.delivered
    assert row.gateway_message_id == delivered.gateway_message_id
    assert list(gateway.calls) == [str(row.id)] * 3
    clock.advance(86400)
    assert (await sender.dispatch_once()).claimed == 0


async def test_a_message_the_gateway_keeps_refusing_is_given_up_and_stays_visible(caseflow):
    maker = await own_dispatcher_only(caseflow)
    gateway, clock = SandboxGateway(failure_rate=1.0, seed=1), Clock()
    sender = dispatcher(maker, gateway, clock, max_attempts=3)
    case = await submit(caseflow)
    rounds = []
    for _ in range(5):
        rounds.append(await sender.dispatch_once())
        clock.advance(sender.max_backoff * 1.2 + 1)
    assert [(r.failed, r.given_up) for r in rounds] == [(1, 0), (1, 0), (1, 1), (0, 0), (0, 0)]
    [row] = await stored(maker)
    assert row.sent_at is None and row.attempts == 3 and row.next_attempt_at is None
    assert "simulated failure" in row.last_error
    assert len(gateway.calls) == 3 and not gateway.delivered
    [listed] = (await caseflow.get("/sandbox/notifications", params={"case_no": case["case_no"]})).json()
    assert listed["sent_at"] is None and listed["attempts"] == 3 and "simulated failure" in listed["last_error"]


async def test_a_sender_dying_mid_send_loses_nothing(caseflow):
    maker = await own_dispatcher_only(caseflow)
    clock = Clock()
    hanging = SandboxGateway(latency=(3600, 3600))
    dying = dispatcher(maker, hanging, clock)
    await submit(caseflow)
    task = asyncio.create_task(dying.dispatch_once())
    await eventually(lambda: len(hanging.calls) == 1)
    task.cancel()  # the process dies while the gateway has the message
    with pytest.raises(asyncio.CancelledError):
        await task
    [row] = await stored(maker)
    assert row.sent_at is None and row.attempts == 1

    gateway = SandboxGateway()
    survivor = dispatcher(maker, gateway, clock)
    assert (await survivor.dispatch_once()).claimed == 0  # still the dead sender's claim
    clock.advance(dying.claim_seconds + 1)
    assert (await survivor.dispatch_once()).sent == 1
    [row] = await stored(maker)
    assert row.sent_at is not None and row.attempts == 2 and list(gateway.calls) == [str(row.id)]


class GatedGateway:
    """Answers only when the test opens the gate: success, or a failure."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        self.fail = False

    async def send(self, message: OutgoingMessage) -> str:
        self.calls.append(message.client_ref)
        await asyncio.wait_for(self.gate.wait(), 10)
        if self.fail:
            raise GatewayError("refused")
        return "LATE-1"

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("late_answer", ["sent", "failed"])
async def test_a_sender_whose_claim_ran_out_does_not_overwrite_the_newer_one(caseflow, late_answer):
    maker = await own_dispatcher_only(caseflow)
    clock, slow = Clock(), GatedGateway()
    late = dispatcher(maker, slow, clock)
    await submit(caseflow)
    task = asyncio.create_task(late.dispatch_once())
    await eventually(lambda: slow.calls)
    clock.advance(late.claim_seconds + 1)  # its claim runs out while the gateway still has the message
    newer_gateway = SandboxGateway() if late_answer == "sent" else GatedGateway()
    newer = dispatcher(maker, newer_gateway, clock)
    if late_answer == "sent":
        assert (await newer.dispatch_once()).sent == 1
        [row] = await stored(maker)
        slow.gate.set()
        assert (await task).sent == 1  # the gateway took it twice (client_ref lets it deduplicate)...
        [after] = await stored(maker)
        assert (after.sent_at, after.gateway_message_id) == (row.sent_at, row.gateway_message_id) != (None, "LATE-1")
    else:
        newer_task = asyncio.create_task(newer.dispatch_once())
        await eventually(lambda: newer_gateway.calls)
        [row] = await stored(maker)
        assert row.attempts == 2
        slow.fail = True
        slow.gate.set()
        assert (await task).failed == 1
        [after] = await stored(maker)  # ...and its failure does not reschedule the newer claim's row
        assert (after.attempts, after.next_attempt_at, after.last_error) == (2, row.next_attempt_at, None)
        newer_gateway.gate.set()
        assert (await newer_task).sent == 1


async def test_two_dispatchers_racing_send_every_row_once(caseflow):
    # Runs on SQLite too: a claim is one UPDATE … RETURNING, and SQLite runs one writer at a time,
    # so two senders cannot claim the same row there either (on PostgreSQL: FOR UPDATE SKIP LOCKED).
    maker = await own_dispatcher_only(caseflow)
    await submit(caseflow)
    [first] = await stored(maker)
    async with maker() as session, session.begin():
        await session.execute(
            insert(Notification),
            [dict(case_id=first.case_id, recipient=ZHANG_SAN, channel="sms", template="accept", text=f"第{i}条",
                  created_at=first.created_at, attempts=0) for i in range(59)],
        )  # fmt: skip
    gateways = [SandboxGateway(latency=(0.001, 0.01), seed=seed) for seed in (1, 2)]
    clock = Clock()
    racers = [dispatcher(maker, gateway, clock, batch_size=4, concurrency=2) for gateway in gateways]
    await asyncio.gather(*(drain(racer) for racer in racers))

    rows = await stored(maker)
    assert len(rows) == 60
    calls = [ref for gateway in gateways for ref in gateway.calls]
    assert sorted(calls, key=int) == [str(row.id) for row in rows]  # every row once, none missed
    assert all(gateway.calls for gateway in gateways)  # both took part
    sent_by = {d.message.client_ref: d.gateway_message_id for gateway in gateways for d in gateway.delivered}
    assert all(row.sent_at is not None and row.attempts == 1 for row in rows)
    assert {str(row.id): row.gateway_message_id for row in rows} == sent_by
    assert racers[0].sent_total + racers[1].sent_total == 60


def test_the_sandbox_gateway_is_deterministic_when_seeded_and_deduplicates_resends():
    async def outcomes(gateway: SandboxGateway) -> list[bool]:
        results = []
        for ref in range(40):
            try:
                await gateway.send(OutgoingMessage(str(ref), PHONE, "sms", "accept", "x"))
                results.append(True)
            except GatewayError:
                results.append(False)
        return results

    first = asyncio.run(outcomes(SandboxGateway(failure_rate=0.5, seed=3)))
    assert first == asyncio.run(outcomes(SandboxGateway(failure_rate=0.5, seed=3)))
    assert True in first and False in first

    losing = SandboxGateway(lost_answer_rate=1.0)
    with pytest.raises(GatewayError, match="lost answer"):
        asyncio.run(losing.send(MESSAGE))
    losing.lost_answer_rate = 0.0
    again = asyncio.run(losing.send(MESSAGE))  # the resend of a message it took: the same message
    assert [d.gateway_message_id for d in losing.delivered] == [again] and len(losing.calls) == 2


def test_the_adapter_comes_from_the_settings():
    assert isinstance(make_gateway(Settings()), SandboxGateway)
    with pytest.raises(ValueError, match="CASEFLOW_SMS_GATEWAY_URL"):
        make_gateway(Settings(notification_adapter="http", sms_gateway_key_id="k", sms_gateway_secret="s"))
    http = make_gateway(Settings(notification_adapter="http", sms_gateway_url="https://sms.example/send",
                                 sms_gateway_key_id="k", sms_gateway_secret="s"))  # fmt: skip
    assert isinstance(http, HttpSmsGateway) and http.url == "https://sms.example/send"
    asyncio.run(http.aclose())


# ---- the HTTP gateway against a loopback server -----------------------------------------------
class LoopbackSmsGateway:
    """An SMS gateway on 127.0.0.1 that records each request and answers as ``answers`` says."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[str] = []  # "ok" (default), "error", "no_id", "hang"
        self.release = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        answer = self.answers.pop(0) if self.answers else "ok"
        if answer == "error":  # like some gateways, it echoes the recipient in its error
            return web.Response(status=500, text=f"internal error sending to {json.loads(body)['recipient']}")
        if answer == "no_id":
            return web.json_response({"status": "queued"})
        if answer == "hang":
            await asyncio.wait_for(self.release.wait(), 30)
        return web.json_response({"message_id": f"GW-{len(self.requests)}"})


@pytest.fixture
async def sms_server():
    fake = LoopbackSmsGateway()
    app = web.Application()
    app.router.add_post("/sms/send", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}/sms/send"
    yield fake
    fake.release.set()
    await runner.cleanup()


async def test_the_http_gateway_posts_a_signed_json_body(sms_server):
    gateway = HttpSmsGateway(sms_server.url, key_id="caseflow-1", secret="s3cret", timeout=2)
    try:
        assert await gateway.send(MESSAGE) == "GW-1"
    finally:
        await gateway.aclose()
    [(headers, body)] = sms_server.requests
    assert json.loads(body) == {"key_id": "caseflow-1", "phone": PHONE, "recipient": ZHANG_SAN,
                                "template": "accept", "text": MESSAGE.text, "client_ref": "42"}  # fmt: skip
    assert headers["Content-Type"].startswith("application/json") and headers["X-Yiwang-Key-Id"] == "caseflow-1"
    timestamp = headers["X-Yiwang-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(b"s3cret", timestamp.encode() + b"\n" + body, hashlib.sha256).hexdigest()
    assert headers["X-Yiwang-Signature"] == expected


@pytest.mark.parametrize(
    ("answer", "reason"),
    [("error", "HTTP 500"), ("no_id", "without a message_id"), ("hang", "no answer within 0.3 s")],
)
async def test_the_http_gateway_counts_errors_and_timeouts_as_failures(sms_server, answer, reason):
    sms_server.answers = [answer]
    gateway = HttpSmsGateway(sms_server.url, key_id="caseflow-1", secret="s3cret", timeout=0.3)
    try:
        with pytest.raises(GatewayError, match=reason):
            await gateway.send(MESSAGE)
    finally:
        await gateway.aclose()
    assert len(sms_server.requests) == 1


async def test_the_http_gateway_counts_an_unreachable_gateway_as_a_failure():
    gateway = HttpSmsGateway(f"http://127.0.0.1:{free_port()}/sms/send", key_id="k", secret="s", timeout=2)
    try:
        with pytest.raises(GatewayError, match="ConnectError"):
            await gateway.send(MESSAGE)
    finally:
        await gateway.aclose()


async def test_a_resend_through_http_carries_the_same_client_ref(caseflow, sms_server):
    maker = await own_dispatcher_only(caseflow)
    sms_server.answers = ["error"]
    gateway, clock = HttpSmsGateway(sms_server.url, key_id="k", secret="s", timeout=2), Clock()
    sender = dispatcher(maker, gateway, clock)
    await submit(caseflow)
    try:
        assert (await sender.dispatch_once()).failed == 1
        clock.advance(60)
        assert (await sender.dispatch_once()).sent == 1
    finally:
        await gateway.aclose()
    [row] = await stored(maker)
    assert row.gateway_message_id == "GW-2" and row.attempts == 2
    assert [json.loads(body)["client_ref"] for _, body in sms_server.requests] == [str(row.id)] * 2
    # The gateway echoed the ID number in its error; what is stored (and shown) is masked.
    assert "HTTP 500" in row.last_error and ZHANG_SAN not in row.last_error and "1101**********002X" in row.last_error


# ---- logs -------------------------------------------------------------------------------------
class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(record) for record in self.records)


async def test_logs_show_phone_and_id_numbers_only_masked(caseflow, sms_server):
    maker = await own_dispatcher_only(caseflow)
    await submit(caseflow)  # a message to ZHANG_SAN's subject id
    [first] = await stored(maker)
    async with maker() as session, session.begin():
        await session.execute(insert(Notification).values(
            case_id=first.case_id, recipient=PHONE, phone=PHONE, channel="sms", template="accept", text="已受理",
            created_at=first.created_at, attempts=0))  # fmt: skip
    # Captured after the app configured logging (it replaces the root's handlers, caplog's too).
    captured, logger, root = Captured(), logging.getLogger("yiwang.caseflow.notifications"), logging.getLogger()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    root.addHandler(captured)
    # Round 1: both fail (the gateway echoes the recipient); round 2: one fails for good, one is sent.
    sms_server.answers = ["error", "error", "error", "ok"]
    gateway, clock = HttpSmsGateway(sms_server.url, key_id="k", secret="s", timeout=2), Clock()
    sender = dispatcher(maker, gateway, clock, max_attempts=2)
    try:
        assert (await sender.dispatch_once()).failed == 2
        clock.advance(60)
        second = await sender.dispatch_once()
        assert (second.sent, second.given_up) == (1, 1)
    finally:
        root.removeHandler(captured)
        logger.setLevel(level)
        await gateway.aclose()
    text = captured.text()
    assert {"INFO", "WARNING", "ERROR"} <= {record.levelname for record in captured.records}
    assert "1101**********002X" in text and "138****8000" in text  # the logs do name the recipients
    assert ZHANG_SAN not in text and PHONE not in text
    assert all(ZHANG_SAN not in (row.last_error or "") and PHONE not in (row.last_error or "")
               for row in await stored(maker))  # fmt: skip


async def test_the_sms_goes_to_the_contact_phone_or_else_the_ems_phone(caseflow, sms_server):
    import dataclasses

    maker = await own_dispatcher_only(caseflow)
    await submit(caseflow)  # EMS to 13800138000, no contact phone given
    await submit(caseflow, contact_phone="13912345678", delivery={"method": "window"})
    await submit(caseflow, delivery={"method": "window"})  # no mobile number at all
    gateway, clock = HttpSmsGateway(sms_server.url, key_id="k", secret="s", timeout=2), Clock()
    try:
        done = await dispatcher(maker, gateway, clock).dispatch_once()
        with pytest.raises(GatewayError, match="no mobile number"):
            await gateway.send(dataclasses.replace(MESSAGE, phone=None))
    finally:
        await gateway.aclose()
    assert (done.sent, done.failed) == (2, 1)
    assert sorted(json.loads(body)["phone"] for _, body in sms_server.requests) == ["13800138000", "13912345678"]
    unsent = [row for row in await stored(maker) if row.sent_at is None]
    assert len(unsent) == 1 and unsent[0].phone is None and "no mobile number" in unsent[0].last_error
