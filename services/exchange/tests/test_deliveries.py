"""Case events → signed webhooks over real sockets: each department gets its own cases only, in
order per case, retried on the schedule, brought forward when the endpoint returns, dead after
the last try and replayed by an administrator. Every webhook received is verified with the
``standardwebhooks`` library and the subscription's secret."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from contracts.departments import Webhook
from kit.bus import Bus
from kit.testing import serve
from services.exchange.context import utc_now
from services.exchange.deliveries import enqueue
from services.exchange.models import CaseDepartment, Delivery, DeliveryAttempt
from services.exchange.tests.outbound_fixtures import (
    BDCDJ_ADMIN,
    PLATFORM_ADMIN,
    START,
    SWJ_ADMIN,
    Receiver,
    accepted,
    branch_assigned,
    consume,
    drain,
    exchange_app,
    free_port_url,
    resubmitted,
    submitted,
    subscribe,
    withdrawn,
    worker_for,
)


@pytest.fixture
async def exchange(database_url, nats_server):
    async with exchange_app(database_url, nats_server.url) as client:
        yield client


async def endpoint(client, department: str, types: list[str] | None = None, **receiver_args):
    """A receiver (verifying with its subscription's secret) served on a real socket, subscribed."""
    receiver = Receiver(**receiver_args)
    stack = serve(receiver.app())
    url = await stack.__aenter__()
    subscription = await subscribe(client, f"{url}/webhooks", department, types=types)
    receiver.secret = subscription["secret"]
    receiver.subscription = subscription  # type: ignore[attr-defined]
    receiver.close = lambda: stack.__aexit__(None, None, None)  # type: ignore[attr-defined]
    return receiver


async def rows(client, **where) -> list[Delivery]:
    async with client.app.state.sessionmaker() as session:
        query = select(Delivery).filter_by(**where).order_by(Delivery.ordering_key, Delivery.sequence)
        return list((await session.execute(query)).scalars().all())


async def test_a_case_reaches_its_own_and_its_branch_department_in_order(exchange):
    bdcdj, swj = await endpoint(exchange, "BDCDJ"), await endpoint(exchange, "SWJ")
    try:
        for event in (accepted("C1", branches=["SWJ"]), branch_assigned("C1", "SWJ"), resubmitted("C1"),
                      withdrawn("C1")):  # fmt: skip
            assert await consume(exchange, event)
        assert await drain(worker_for(exchange)) == 6
    finally:
        await bdcdj.close()
        await swj.close()
    assert bdcdj.of_case("C1") == [("case.accepted", 1), ("case.resubmitted", 2), ("case.withdrawn", 3)]
    assert swj.of_case("C1") == [("case.branch_assigned", 1), ("case.resubmitted", 2), ("case.withdrawn", 3)]
    first = Webhook.model_validate(bdcdj.received[0])  # the contract's own model reads it
    assert (first.data.department, first.data.lead_department, first.data.applicant) == ("BDCDJ", "BDCDJ",
                                                                                         "11010519491231002X")  # fmt: skip
    branch = Webhook.model_validate(swj.received[0])
    assert (branch.data.department, branch.data.lead_department) == ("SWJ", "BDCDJ")
    assert bdcdj.refused == [] and swj.refused == []
    sent = {row.id for row in await rows(exchange)}
    assert set(bdcdj.ids) | set(swj.ids) == sent  # webhook-id is the delivery id
    assert all(h["webhook-signature"].startswith("v1,") for h in bdcdj.headers)
    async with exchange.app.state.sessionmaker() as session:
        recorded = (await session.execute(select(CaseDepartment.department).order_by(CaseDepartment.department))).all()
    assert [d for (d,) in recorded] == ["BDCDJ", "SWJ"]


async def test_a_submitted_case_and_its_answered_correction_reach_its_department_before_acceptance(exchange):
    everything = await endpoint(exchange, "BDCDJ")
    corrections_only = await endpoint(exchange, "BDCDJ", types=["case.resubmitted"])
    swj = await endpoint(exchange, "SWJ")
    try:
        for event in (submitted("C1"), resubmitted("C1"), accepted("C1", branches=["SWJ"]), submitted("G1", "GAJ"),
                      resubmitted("G1", "GAJ")):  # fmt: skip
            assert await consume(exchange, event)
        assert await drain(worker_for(exchange)) == 4
    finally:
        for receiver in (everything, corrections_only, swj):
            await receiver.close()
    assert everything.of_case("C1") == [("case.submitted", 1), ("case.resubmitted", 2), ("case.accepted", 3)]
    assert corrections_only.of_case("C1") == [("case.resubmitted", 1)]  # only what it subscribed to
    assert swj.received == []  # a branch is known from acceptance on (and gets case.branch_assigned)
    first = Webhook.model_validate(everything.received[0])  # the contract's own model reads it
    assert (first.type, first.data.state, first.data.applicant) == ("case.submitted", "submitted", "11010519491231002X")
    async with exchange.app.state.sessionmaker() as session:
        recorded = (await session.execute(select(CaseDepartment.department).order_by(CaseDepartment.department))).all()
    assert [d for (d,) in recorded] == ["BDCDJ", "GAJ", "SWJ"]  # the submission recorded the lead once


async def test_a_department_never_receives_another_department_s_cases(exchange):
    bdcdj = await endpoint(exchange, "BDCDJ")
    gaj = await endpoint(exchange, "GAJ")
    swj = await endpoint(exchange, "SWJ")
    try:
        events = [accepted("B-1"), accepted("G-1", "GAJ"), accepted("B-2", branches=["SWJ"]),
                  branch_assigned("B-2", "SWJ"), withdrawn("G-1", "GAJ"), resubmitted("B-1"), withdrawn("B-2"),
                  resubmitted("NEVER-ACCEPTED"), withdrawn("NEVER-ACCEPTED", "GAJ")]  # fmt: skip
        for event in events:
            assert await consume(exchange, event)
        await drain(worker_for(exchange))
    finally:
        for receiver in (bdcdj, gaj, swj):
            await receiver.close()
    cases = lambda r: sorted({w["data"]["case_no"] for w in r.received})  # noqa: E731
    # A case exchange never saw submitted or accepted is still its own department's (ADR 0030: its
    # submission may simply not have been applied yet), and no other's.
    assert cases(bdcdj) == ["B-1", "B-2", "NEVER-ACCEPTED"]
    assert cases(gaj) == ["G-1", "NEVER-ACCEPTED"]
    assert cases(swj) == ["B-2"]
    assert all(w["data"]["department"] == "BDCDJ" for w in bdcdj.received)
    assert all(w["data"]["department"] == "GAJ" for w in gaj.received)
    # nor through the admin API: BDCDJ's administrator sees its deliveries only
    listed = (await exchange.get("/deliveries?page_size=100", headers=BDCDJ_ADMIN)).json()
    assert listed["total"] == 6 and {d["department"] for d in listed["items"]} == {"BDCDJ"}
    gaj_delivery = (await rows(exchange, department="GAJ"))[0]
    assert (await exchange.get(f"/deliveries/{gaj_delivery.id}", headers=BDCDJ_ADMIN)).status_code == 404
    assert (await exchange.post(f"/deliveries/{gaj_delivery.id}/replay", headers=SWJ_ADMIN)).status_code == 404
    assert (await exchange.get("/deliveries?department=GAJ", headers=BDCDJ_ADMIN)).status_code == 403


async def test_a_withdrawal_applied_before_the_submission_still_reaches_the_department(exchange):
    """Two replicas share the durable (or two caseflow relays publish at once): a case's withdrawal
    can be applied before its submission. The lead department is told of both, numbered in the
    order they were applied, and the timestamps tell the true order."""
    bdcdj = await endpoint(exchange, "BDCDJ")
    try:
        first, then = submitted("LATE", at=START - timedelta(hours=1)), withdrawn("LATE")
        assert await consume(exchange, then) and await consume(exchange, first)
        assert await drain(worker_for(exchange)) == 2
    finally:
        await bdcdj.close()
    assert bdcdj.of_case("LATE") == [("case.withdrawn", 1), ("case.submitted", 2)]
    stamps = [(w["type"], datetime.fromisoformat(w["timestamp"].replace("Z", "+00:00"))) for w in bdcdj.received]
    assert sorted(stamps, key=lambda s: s[1]) == [
        ("case.submitted", START - timedelta(hours=1)),
        ("case.withdrawn", START),
    ]


async def test_a_department_system_is_not_told_what_its_own_system_did(exchange):
    """A case the centre mirrors (its steps are ``system:BDCDJ``'s) is not echoed back to it; a
    platform case of the same department is."""
    bdcdj = await endpoint(exchange, "BDCDJ")
    try:
        for event in (submitted("MIRROR", actor="system:BDCDJ"), accepted("MIRROR", actor="system:BDCDJ"),
                      submitted("PLATFORM"), accepted("PLATFORM")):  # fmt: skip
            assert await consume(exchange, event)
        assert await drain(worker_for(exchange)) == 2
    finally:
        await bdcdj.close()
    assert bdcdj.of_case("PLATFORM") == [("case.submitted", 1), ("case.accepted", 2)]
    assert bdcdj.of_case("MIRROR") == []


async def test_redelivered_caseflow_events_queue_nothing_twice(exchange):
    receiver = await endpoint(exchange, "BDCDJ")
    try:
        event = accepted("C1", branches=["SWJ"])
        assert await consume(exchange, event) is True
        assert await consume(exchange, event) is False  # the inbox drops the redelivery
        assert await consume(exchange, event, durable="exchange-replayed-stream") is True  # applied again…
        assert await consume(exchange, branch_assigned("C1", "SWJ")) is True
        assert len(await rows(exchange)) == 1  # …but the same event id queues nothing new
        await drain(worker_for(exchange))
    finally:
        await receiver.close()
    assert receiver.of_case("C1") == [("case.accepted", 1)]


async def test_one_case_waits_for_its_earlier_delivery_while_others_go(exchange):
    receiver = await endpoint(exchange, "BDCDJ")
    try:
        for event in (accepted("C1"), resubmitted("C1"), withdrawn("C1")):
            await consume(exchange, event)
        worker = worker_for(exchange)
        receiver.down = True
        assert await drain(worker) == 1  # only C1's first: the others wait behind it
        [first, second, third] = await rows(exchange)
        assert (first.attempts, second.attempts, third.attempts) == (1, 0, 0)
        assert first.last_status_code == 503 and first.last_error == "HTTP 503"
        await consume(exchange, accepted("C2"))  # another case is not held back by C1
        exchange.clock.advance(1)
        assert await drain(worker) == 1  # C2 goes; C1 is not due for 4 more seconds
        assert receiver.of_case("C1") == [] and receiver.failed == 2
        receiver.down = False
        exchange.clock.advance(5)  # C2's retry and C1's are due
        assert await drain(worker) == 4
        assert receiver.received[0]["data"]["case_no"] in {"C1", "C2"}
    finally:
        await receiver.close()
    assert receiver.of_case("C1") == [("case.accepted", 1), ("case.resubmitted", 2), ("case.withdrawn", 3)]
    assert [r.status for r in await rows(exchange)] == ["delivered"] * 4


async def test_a_department_system_that_was_down_gets_every_missed_delivery_in_order_when_back(exchange):
    receiver = await endpoint(exchange, "BDCDJ", down=True)
    worker = worker_for(exchange)
    try:
        await consume(exchange, accepted("C1"))
        await drain(worker)
        exchange.clock.advance(5)
        await drain(worker)  # C1's first has failed twice: its next try is 5 minutes away
        await consume(exchange, resubmitted("C1"))
        await consume(exchange, withdrawn("C1"))
        await consume(exchange, accepted("C2"))
        await drain(worker)  # C2 fails once (its next try in 5 s); C1's later ones wait behind C1's first
        exchange.clock.advance(1)
        assert await drain(worker) == 0
        receiver.down = False  # the system returns; nothing is due yet
        await consume(exchange, accepted("C3"))
        assert await drain(worker) == 5  # C3 goes; its success brings the waiting ones forward, in order
    finally:
        await receiver.close()
    assert receiver.of_case("C1") == [("case.accepted", 1), ("case.resubmitted", 2), ("case.withdrawn", 3)]
    assert receiver.of_case("C2") == [("case.accepted", 1)] and receiver.of_case("C3") == [("case.accepted", 1)]
    assert receiver.failed == 3
    assert receiver.received[0]["data"]["case_no"] == "C3"  # the first to get through after the outage
    assert all(r.status == "delivered" for r in await rows(exchange))


async def test_dead_after_the_schedule_then_replayed_with_the_same_id(exchange):
    receiver = await endpoint(exchange, "BDCDJ", down=True)
    worker = worker_for(exchange)
    try:
        await consume(exchange, accepted("C1"))
        await consume(exchange, resubmitted("C1"))
        for wait in (0, 5, 300):  # the test schedule: at once, then after 5 s, 5 min, 30 min
            exchange.clock.advance(wait)
            assert await drain(worker) == 1
        exchange.clock.advance(1800)
        assert await drain(worker) == 2  # the last try of the first; then the second's first
        dead, after = await rows(exchange)
        assert (dead.status, dead.attempts) == ("dead", 4)
        detail = (await exchange.get(f"/deliveries/{dead.id}", headers=BDCDJ_ADMIN)).json()
        assert detail["status"] == "dead" and detail["next_attempt_at"] is None
        assert [a["status_code"] for a in detail["attempt_log"]] == [503] * 4
        assert detail["payload"]["type"] == "case.accepted" and detail["payload"]["data"]["sequence"] == 1
        # a dead delivery does not hold its case back: the next one is tried (and fails alike, for now)
        assert after.attempts == 1 and after.status == "pending"
        receiver.down = False
        exchange.clock.advance(5)
        assert await drain(worker) == 1
        assert receiver.of_case("C1") == [("case.resubmitted", 2)]  # the gap in sequence shows the dead one
        listed = (await exchange.get("/deliveries?status=dead&case_no=C1", headers=BDCDJ_ADMIN)).json()
        assert [d["id"] for d in listed["items"]] == [dead.id]
        replayed = await exchange.post(f"/deliveries/{dead.id}/replay", headers=BDCDJ_ADMIN)
        assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
        assert replayed.json()["attempts"] == 0
        assert (await exchange.post(f"/deliveries/{dead.id}/replay", headers=BDCDJ_ADMIN)).status_code == 409
        assert await drain(worker) == 1
        assert receiver.of_case("C1") == [("case.resubmitted", 2), ("case.accepted", 1)]
        assert receiver.ids[-1] == dead.id  # the same webhook-id: a receiver that had it can tell
        # a delivered one may be replayed too (a department that lost its copy)
        assert (await exchange.post(f"/deliveries/{after.id}/replay", headers=PLATFORM_ADMIN)).status_code == 200
        assert await drain(worker) == 1
        assert receiver.ids.count(after.id) == 2
    finally:
        await receiver.close()
    async with exchange.app.state.sessionmaker() as session:
        attempts = await session.scalar(select(func.count()).select_from(DeliveryAttempt))
    assert attempts == 4 + 2 + 1 + 1  # every try recorded


async def test_a_subscription_s_dead_deliveries_replayed_at_once_in_order(exchange):
    receiver = await endpoint(exchange, "BDCDJ", down=True)
    worker = worker_for(exchange, retry_schedule_seconds=[5])
    try:
        for event in (accepted("C1"), resubmitted("C1"), withdrawn("C1")):
            await consume(exchange, event)
        for _ in range(3):  # each dies after two tries, then lets the next go
            await drain(worker)
            exchange.clock.advance(5)
            await drain(worker)
        assert [r.status for r in await rows(exchange)] == ["dead"] * 3
        receiver.down = False
        sub = receiver.subscription["id"]
        answer = (await exchange.post(f"/subscriptions/{sub}/replay", headers=BDCDJ_ADMIN)).json()
        assert answer["replayed"] == 3
        assert await drain(worker) == 3
        assert receiver.of_case("C1") == [("case.accepted", 1), ("case.resubmitted", 2), ("case.withdrawn", 3)]
        since = (await exchange.post(f"/subscriptions/{sub}/replay", params={"since": "2026-12-01T00:00:00Z"},
                                     headers=BDCDJ_ADMIN)).json()  # fmt: skip
        assert since["replayed"] == 3  # with since: delivered ones again too
        assert await drain(worker) == 3
        assert len(receiver.received) == 6
    finally:
        await receiver.close()


async def test_no_connection_is_tried_again_and_recorded(exchange):
    subscription = await subscribe(exchange, free_port_url(), "BDCDJ")
    await consume(exchange, accepted("C1"))
    assert await drain(worker_for(exchange)) == 1
    [row] = await rows(exchange)
    assert row.status == "pending" and row.last_status_code is None and "ConnectError" in row.last_error
    assert row.attempts == 1 and row.next_attempt_at == exchange.clock() + timedelta(seconds=5)
    detail = (await exchange.get(f"/deliveries/{row.id}", headers=PLATFORM_ADMIN)).json()
    assert detail["attempt_log"][0]["status_code"] is None and detail["subscription_id"] == subscription["id"]


async def test_a_disabled_subscription_gets_nothing_new_and_its_queue_waits(exchange):
    receiver = await endpoint(exchange, "BDCDJ")
    worker = worker_for(exchange)
    sub = receiver.subscription["id"]
    try:
        await consume(exchange, accepted("C1"))
        await exchange.post(f"/subscriptions/{sub}/disable", headers=BDCDJ_ADMIN)
        await consume(exchange, accepted("C2"))  # not subscribed while disabled
        assert await drain(worker) == 0  # what was queued waits
        await exchange.post(f"/subscriptions/{sub}/enable", headers=BDCDJ_ADMIN)
        assert await drain(worker) == 1
    finally:
        await receiver.close()
    assert [w["data"]["case_no"] for w in receiver.received] == ["C1"]


async def test_after_a_rotation_both_secrets_verify_for_a_while(exchange):
    receiver = await endpoint(exchange, "BDCDJ")
    worker = worker_for(exchange)
    sub = receiver.subscription["id"]
    try:
        old = receiver.secret
        new = (await exchange.post(f"/subscriptions/{sub}/rotate-secret", headers=BDCDJ_ADMIN)).json()["secret"]
        await consume(exchange, accepted("C1"))
        await drain(worker)  # the receiver still verifies with the old secret
        receiver.secret = new
        await consume(exchange, accepted("C2"))
        await drain(worker)
        exchange.clock.advance(24 * 3600 + 1)  # the window is over: the old secret no longer signs
        receiver.secret = old
        await consume(exchange, accepted("C3", at=exchange.clock()))
        await drain(worker)
    finally:
        await receiver.close()
    assert [w["data"]["case_no"] for w in receiver.received] == ["C1", "C2"]
    assert receiver.refused == ["No matching signature found"]
    assert len(receiver.headers[1]["webhook-signature"].split(" ")) == 2


async def test_two_workers_never_send_one_delivery_twice_nor_a_case_out_of_order(exchange):
    receiver = await endpoint(exchange, "BDCDJ")
    try:
        for n in range(8):
            await consume(exchange, accepted(f"C{n}"))
            await consume(exchange, resubmitted(f"C{n}"))
            await consume(exchange, withdrawn(f"C{n}"))
        one, two = worker_for(exchange, delivery_batch_size=5), worker_for(exchange, delivery_batch_size=5)
        for _ in range(20):
            claimed = await asyncio.gather(one.run_once(), two.run_once())
            if not any(claimed):
                break
    finally:
        await receiver.close()
    assert len(receiver.ids) == len(set(receiver.ids)) == 24
    for n in range(8):
        assert [s for _, s in receiver.of_case(f"C{n}")] == [1, 2, 3]


async def test_push_settled_is_queued_once_per_push_for_the_inbound_half(exchange):
    receiver = await endpoint(exchange, "BDCDJ")
    await subscribe(exchange, "https://only-case.example/webhooks", "BDCDJ", types=["case.accepted"])
    data = {"push_id": "rc_1", "event_id": "bdc-1", "push_type": "licence.issued", "outcome": "applied",
            "licence_id": "lic_1"}  # fmt: skip
    try:
        async with exchange.app.state.sessionmaker() as session, session.begin():
            for _ in range(2):
                queued = await enqueue(session, department="BDCDJ", type="push.settled", source_id="push:rc_1",
                                       ordering_key="push:rc_1", data=data, at=exchange.clock())  # fmt: skip
                assert queued == (1 if _ == 0 else 0)  # the other subscription does not want push.settled
        await drain(worker_for(exchange))
    finally:
        await receiver.close()
    [webhook] = receiver.received
    assert webhook["type"] == "push.settled" and webhook["data"]["push_id"] == "rc_1"
    assert Webhook.model_validate(webhook).data.outcome == "applied"


async def test_the_background_worker_delivers_what_caseflow_publishes(database_url, nats_server):
    """Real NATS: the case event goes onto CASEFLOW, exchange's consumer queues it, the worker
    (its own background loop, a commit waking it) sends it."""
    receiver = Receiver()
    async with serve(receiver.app()) as url, exchange_app(database_url, nats_server.url, consume_case_events=True,
                                                            deliveries_enabled=True) as client:  # fmt: skip
        client.app.state.exchange.now = utc_now
        department = f"N{datetime.now(UTC).strftime('%H%M%S%f')}"  # its own: the stream is shared
        receiver.secret = (await subscribe(client, f"{url}/webhooks", department))["secret"]
        bus = Bus(nats_server.url, name="caseflow", streams={"CASEFLOW": ["caseflow.>"]})
        await bus.start()
        await bus.wait_connected(10)
        try:
            js = await bus.jetstream()
            event = accepted(f"{department}-1", department, at=datetime.now(UTC))
            await js.publish("caseflow.case.accepted", event.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": event.id})  # fmt: skip
            for _ in range(300):
                if receiver.received:
                    break
                await asyncio.sleep(0.1)
        finally:
            await bus.close()
    assert [w["data"]["case_no"] for w in receiver.received] == [f"{department}-1"]


async def test_a_crashed_worker_s_claim_runs_out_and_its_late_answer_changes_nothing(exchange):
    receiver = await endpoint(exchange, "BDCDJ")
    try:
        await consume(exchange, accepted("C1"))
        crashed, other = worker_for(exchange), worker_for(exchange)
        [(delivery_id, attempts)] = await crashed._claim(exchange.clock())  # claimed, then the worker died
        assert await other.run_once() == 0  # held by the claim
        exchange.clock.advance(crashed.claim_seconds + 1)
        assert await other.run_once() == 1  # the claim ran out: sent by the other
        [row] = await rows(exchange)
        assert row.status == "delivered" and row.attempts == attempts + 1
        # the crashed worker's answer arrives at last: it is not this claim's any more
        await crashed._record(row, attempts, status_code=503, error="HTTP 503", duration_ms=1)
        [row] = await rows(exchange)
        assert row.status == "delivered" and row.last_status_code == 200
    finally:
        await receiver.close()
    assert receiver.ids == [delivery_id]
