"""Webhooks queued to departments' subscriptions, and what an administrator sees and replays of
them (ADR 0020).

``enqueue`` is the one way a webhook enters the queue — the case events (case_events.py) and the
inbound half's ``push.settled`` both call it, in their own transaction. One ``deliveries`` row per
subscription that wants the type: ``source_id`` (the event it reports) makes it once per
subscription however often it is called; ``sequence`` numbers it within its ``ordering_key`` (one
case) for that subscription, 1, 2, 3 …, and travels in the body of case webhooks so the receiver
can check its order. The body is built and checked against ``contracts.departments.Webhook`` here,
once: it is signed and sent as stored, every try and every replay alike.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.departments import Webhook
from kit.auth import Principal
from kit.errors import Problem
from kit.events import uuid7
from kit.pagination import PageQuery
from services.exchange import scoped
from services.exchange.domain.webhooks import DEAD, DELIVERED, PENDING
from services.exchange.models import Delivery, DeliveryAttempt, Subscription

# session.info flag: this transaction queued a delivery, so the worker starts at once on commit.
DELIVERIES_QUEUED = "exchange.deliveries_queued"


def new_delivery_id() -> str:
    """``msg_`` + a UUIDv7 (time-ordered): the ``webhook-id`` header, the same on every try."""
    return f"msg_{uuid7().hex}"


def case_key(case_no: str) -> str:
    return f"case:{case_no}"


async def enqueue(
    session: AsyncSession,
    *,
    department: str,
    type: str,
    source_id: str,
    ordering_key: str,
    data: dict[str, Any],
    at: datetime,
) -> int:
    """Queue one webhook of ``type`` (contracts.departments.WebhookType) to every active
    subscription of ``department`` that wants it, in the caller's transaction; ``source_id`` makes
    it once per subscription however often it is called; returns how many were queued.

    Case webhooks (``case.*``) get their ``sequence`` here. ``at`` is when it happened: the
    webhook's ``timestamp`` and the time the delivery is first due."""
    query = select(Subscription).where(Subscription.department == department, Subscription.status == "active")
    if session.get_bind().dialect.name == "postgresql":
        # One enqueue per subscription at a time: two consumers never number a case alike.
        query = query.with_for_update()
    subscriptions = (await session.execute(query.order_by(Subscription.id))).scalars().all()
    queued = 0
    for subscription in subscriptions:
        if type not in json.loads(subscription.event_types):
            continue
        already = await session.scalar(
            select(Delivery.id).where(Delivery.subscription_id == subscription.id, Delivery.source_id == source_id)
        )
        if already is not None:
            continue
        last = await session.scalar(
            select(func.max(Delivery.sequence)).where(
                Delivery.subscription_id == subscription.id, Delivery.ordering_key == ordering_key
            )
        )
        sequence = (last or 0) + 1
        body = {**data, "sequence": sequence} if type.startswith("case.") else dict(data)
        payload = Webhook.model_validate({"type": type, "timestamp": at, "data": body}).model_dump_json()
        session.add(
            Delivery(
                id=new_delivery_id(), subscription_id=subscription.id, department=department, source_id=source_id,
                ordering_key=ordering_key, sequence=sequence, type=type, payload=payload, status=PENDING,
                attempts=0, next_attempt_at=at, created_at=at,
            )
        )  # fmt: skip
        queued += 1
    if queued:
        await session.flush()
        session.info[DELIVERIES_QUEUED] = True
    return queued


# ---- what administrators see ---------------------------------------------------------------------
def delivery_out(delivery: Delivery, attempts: list[DeliveryAttempt] | None = None) -> dict[str, Any]:
    """A delivery as the admin API shows it (the payload as sent, which the department also got)."""
    out: dict[str, Any] = {
        "id": delivery.id, "subscription_id": delivery.subscription_id, "department": delivery.department,
        "type": delivery.type, "ordering_key": delivery.ordering_key, "sequence": delivery.sequence,
        "source_id": delivery.source_id, "status": delivery.status, "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == PENDING else None,
        "last_status_code": delivery.last_status_code, "last_error": delivery.last_error,
        "created_at": delivery.created_at, "delivered_at": delivery.delivered_at,
    }  # fmt: skip
    if attempts is not None:
        out["payload"] = json.loads(delivery.payload)
        out["attempt_log"] = [
            {"at": a.at, "status_code": a.status_code, "error": a.error, "duration_ms": a.duration_ms} for a in attempts
        ]
    return out


async def list_deliveries(
    session: AsyncSession,
    caller: Principal,
    page: PageQuery,
    *,
    department: str | None,
    status: str | None,
    case_no: str | None,
) -> dict[str, Any]:
    """A department's deliveries (every department's for a platform caller), newest first."""
    total, rows = await scoped.department_page(
        session, caller, page, action="delivery.list", model=Delivery, department=department,
        filters=[(Delivery.status, status), (Delivery.ordering_key, case_key(case_no) if case_no is not None else None)],
        order_by=[Delivery.created_at.desc(), Delivery.id.desc()],
    )  # fmt: skip
    return page.answer(total, [delivery_out(row) for row in rows])


async def read_delivery(session: AsyncSession, caller: Principal, delivery_id: str) -> dict[str, Any]:
    """One delivery with its payload and every attempt."""
    delivery = await scoped.visible(session, caller, Delivery, delivery_id, "delivery.read")
    attempts = (
        await session.execute(
            select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id).order_by(DeliveryAttempt.id)
        )
    ).scalars().all()  # fmt: skip
    return delivery_out(delivery, list(attempts))


async def replay_delivery(
    session: AsyncSession, caller: Principal, delivery_id: str, *, now: datetime
) -> dict[str, Any]:
    """A dead or delivered delivery goes again: pending, attempts reset, the same webhook-id and
    body (the receiver deduplicates by the id if it had it). A pending one is refused (409): it is
    being tried already."""
    delivery = await scoped.visible(session, caller, Delivery, delivery_id, "delivery.replay")
    if delivery.status == PENDING:
        raise Problem(409, "conflict", "Already pending", "the delivery is still being tried", rule="pending")
    _reset(delivery, now)
    session.info[DELIVERIES_QUEUED] = True
    await session.flush()
    return delivery_out(delivery)


def _reset(delivery: Delivery, now: datetime) -> None:
    delivery.status = PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.claimed_until = None
    delivery.last_status_code = None
    delivery.last_error = None
    delivery.delivered_at = None


async def replay_since(session: AsyncSession, subscription_id: str, *, since: datetime | None, now: datetime) -> int:
    """Deliveries of a subscription go again (as ``replay_delivery``), in their order; how many.
    Without ``since``: every dead one. With it: every dead or delivered one created at or after
    ``since`` (a department system restored from a backup asks for what it lost). The caller
    checked who may."""
    where = [Delivery.subscription_id == subscription_id]
    if since is None:
        where.append(Delivery.status == DEAD)
    else:
        where += [Delivery.created_at >= since, Delivery.status.in_((DEAD, DELIVERED))]
    result = await session.execute(
        update(Delivery)
        .where(*where)
        .values(status=PENDING, attempts=0, next_attempt_at=now, claimed_until=None, last_status_code=None,
                last_error=None, delivered_at=None)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        session.info[DELIVERIES_QUEUED] = True
    return count
