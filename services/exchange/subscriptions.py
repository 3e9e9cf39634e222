"""Webhook subscriptions: a department system's endpoint, the event types it wants and the secret
its deliveries are signed with (Standard Webhooks, ADR 0020).

The secret (``whsec_`` + base64 of 32 random bytes) is shown once, when made (creation, rotation);
it is stored sealed (AES-GCM under EXCHANGE_SECRETS_KEY, bound to the subscription id). After a
rotation the previous secret keeps signing as a second ``v1`` signature for
``previous_secret_hours``, so the department can switch its verifier without missing a delivery.
"""

from __future__ import annotations

import base64
import json
import secrets as random_secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.errors import Problem
from kit.pagination import PageQuery
from services.exchange import deliveries, scoped
from services.exchange.context import ExchangeContext
from services.exchange.domain import access
from services.exchange.domain.webhooks import SECRET_PREFIX, secret_problem, url_problem
from services.exchange.models import Subscription
from services.exchange.secretbox import SecretBox


def new_secret() -> str:
    """A fresh Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(random_secrets.token_bytes(32)).decode()


def subscription_out(subscription: Subscription) -> dict[str, Any]:
    """A subscription as the admin API shows it (never its secret)."""
    return {
        "id": subscription.id, "department": subscription.department, "url": subscription.url,
        "event_types": json.loads(subscription.event_types), "status": subscription.status,
        "created_at": subscription.created_at, "created_by": subscription.created_by,
        "updated_at": subscription.updated_at, "previous_secret_until": subscription.previous_secret_until,
        "version": subscription.version,
    }  # fmt: skip


def _invalid(field: str, rule: str, message: str) -> Problem:
    return Problem(422, "validation", "Request is not valid", f"{field}: {message}",
                   errors=[{"field": field, "rule": rule, "message": message}])  # fmt: skip


def secret_context(subscription_id: str) -> str:
    """What a subscription's secrets are bound to: its id (a ciphertext copied onto another
    subscription does not open; partner keys are bound to ``partner_key:<key id>``)."""
    return subscription_id


def signing_secrets(subscription: Subscription, box: SecretBox, now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one while its
    rotation window lasts."""
    found = [box.open(subscription.secret_ciphertext, context=secret_context(subscription.id))]
    if (
        subscription.previous_secret_ciphertext
        and subscription.previous_secret_until
        and (now < subscription.previous_secret_until)
    ):
        found.append(box.open(subscription.previous_secret_ciphertext, context=secret_context(subscription.id)))
    return found


async def create(
    session: AsyncSession,
    ctx: ExchangeContext,
    caller: Principal,
    *,
    department: str,
    url: str,
    event_types: list[str],
    secret: str | None = None,
    subscription_id: str | None = None,
) -> tuple[dict[str, Any], str]:
    """A new active subscription; answers it and its secret (a fresh one unless ``secret`` is
    given; ``subscription_id`` is for the demo seed only)."""
    access.check("subscription.create", access.relation_to(caller, department), caller.roles)
    problem = url_problem(url, allow_http=ctx.settings.sandbox)
    if problem is not None:
        raise _invalid("body.url", *problem)
    if secret is not None and (wrong := secret_problem(secret)) is not None:
        raise _invalid("body.secret", "webhook_secret", wrong)
    now = ctx.current_time()
    secret = secret or new_secret()
    subscription_id = subscription_id or f"sub_{random_secrets.token_hex(12)}"
    subscription = Subscription(
        id=subscription_id, department=department, url=url, event_types=json.dumps(sorted(set(event_types))),
        secret_ciphertext=ctx.box.seal(secret, context=secret_context(subscription_id)), status="active", created_at=now,
        created_by=caller.subject[:64], updated_at=None, version=1,
    )  # fmt: skip
    session.add(subscription)
    await session.flush()
    return subscription_out(subscription), secret


async def list_for(
    session: AsyncSession, caller: Principal, page: PageQuery, *, department: str | None
) -> dict[str, Any]:
    """A department's subscriptions (every department's for a platform caller asking for none)."""
    total, rows = await scoped.department_page(session, caller, page, action="subscription.list", model=Subscription,
                                               department=department,
                                               order_by=[Subscription.created_at, Subscription.id])  # fmt: skip
    return page.answer(total, [subscription_out(row) for row in rows])


async def read(session: AsyncSession, caller: Principal, subscription_id: str) -> dict[str, Any]:
    """One subscription (never its secret); 404 as for none to who may not see it."""
    subscription = await scoped.visible(session, caller, Subscription, subscription_id, "subscription.read")
    return subscription_out(subscription)


async def set_status(session: AsyncSession, ctx: ExchangeContext, caller: Principal, subscription_id: str, *,
                     active: bool) -> dict[str, Any]:  # fmt: skip
    """Disable (nothing new is queued; what is queued waits) or enable again (it goes on, in
    order). Setting the status it has already changes nothing."""
    subscription = await scoped.visible(session, caller, Subscription, subscription_id, "subscription.manage")
    status = "active" if active else "disabled"
    if subscription.status != status:
        subscription.status = status
        subscription.updated_at = ctx.current_time()
        subscription.version += 1
        if active:
            session.info[deliveries.DELIVERIES_QUEUED] = True  # what waited goes now
    await session.flush()
    return subscription_out(subscription)


async def rotate_secret(session: AsyncSession, ctx: ExchangeContext, caller: Principal,
                        subscription_id: str) -> tuple[dict[str, Any], str]:  # fmt: skip
    """A new secret (answered once); the old one signs too until ``previous_secret_hours`` pass."""
    subscription = await scoped.visible(session, caller, Subscription, subscription_id, "subscription.manage")
    now = ctx.current_time()
    secret = new_secret()
    subscription.previous_secret_ciphertext = subscription.secret_ciphertext
    subscription.previous_secret_until = now + timedelta(hours=ctx.settings.previous_secret_hours)
    subscription.secret_ciphertext = ctx.box.seal(secret, context=secret_context(subscription.id))
    subscription.updated_at = now
    subscription.version += 1
    await session.flush()
    return subscription_out(subscription), secret


async def replay(session: AsyncSession, ctx: ExchangeContext, caller: Principal, subscription_id: str, *,
                 since: datetime | None) -> dict[str, Any]:  # fmt: skip
    """Every dead (and, with ``since``, delivered) delivery since then goes again, in order."""
    subscription = await scoped.visible(session, caller, Subscription, subscription_id, "subscription.manage")
    now = ctx.current_time()
    count = await deliveries.replay_since(session, subscription.id, since=since, now=now)
    return {"subscription_id": subscription.id, "replayed": count, "since": since}
