"""The demo platform's webhook subscription: ``make run`` subscribes the sandbox department system
(services/exchange/sandbox_department.py) for its department, with the secret both sides are given
(EXCHANGE_DEMO_WEBHOOK_SECRET here, BDCDJ_SANDBOX_WEBHOOK_SECRET there). ``cli.py seed-demo``
calls ``seed_subscriptions``; idempotent: run again, it brings the URL and the secret up to date
(the sandbox's port may have changed) and changes nothing else."""

from __future__ import annotations

import json
from typing import get_args

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.departments import WebhookType
from kit.auth import Principal
from services.exchange import subscriptions
from services.exchange.context import ExchangeContext
from services.exchange.domain.access import PLATFORM_DEPARTMENT
from services.exchange.domain.webhooks import secret_problem
from services.exchange.models import Subscription

SEED_PRINCIPAL = Principal(subject="officer:seed-demo", kind="officer", level=4, roles=("admin",),
                           department=PLATFORM_DEPARTMENT)  # fmt: skip
# The sandbox takes every webhook there is (it ignores what it does not act on).
DEMO_EVENT_TYPES = sorted(get_args(WebhookType))


def demo_subscription_id(department: str) -> str:
    return f"sub_demo_{department.lower()}"


async def seed_subscriptions(session: AsyncSession, ctx: ExchangeContext) -> list[str]:
    """Subscribe ``EXCHANGE_DEMO_WEBHOOK_DEPARTMENT`` (BDCDJ) to ``EXCHANGE_DEMO_WEBHOOK_URL`` with
    ``EXCHANGE_DEMO_WEBHOOK_SECRET``, in the caller's transaction; what it made or changed (ids).
    Nothing without both the URL and the secret (a deployment subscribes its departments itself)."""
    settings = ctx.settings
    secret = settings.demo_webhook_secret.get_secret_value()
    url = settings.demo_webhook_url
    if not secret or not url:
        return []
    problem = secret_problem(secret)
    if problem is not None:
        raise ValueError(f"EXCHANGE_DEMO_WEBHOOK_SECRET: {problem}")
    department = settings.demo_webhook_department
    subscription_id = demo_subscription_id(department)
    existing = await session.get(Subscription, subscription_id)
    if existing is None:
        await subscriptions.create(session, ctx, SEED_PRINCIPAL, department=department, url=url,
                                   event_types=DEMO_EVENT_TYPES, secret=secret,
                                   subscription_id=subscription_id)  # fmt: skip
        return [subscription_id]
    changed = False
    if existing.url != url:
        existing.url = url
        changed = True
    context = subscriptions.secret_context(existing.id)
    if ctx.box.open(existing.secret_ciphertext, context=context) != secret:
        existing.secret_ciphertext = ctx.box.seal(secret, context=context)
        changed = True
    if json.loads(existing.event_types) != DEMO_EVENT_TYPES or existing.status != "active":
        existing.event_types = json.dumps(DEMO_EVENT_TYPES)
        existing.status = "active"
        changed = True
    if changed:
        existing.updated_at = ctx.current_time()
        existing.version += 1
        await session.flush()
        return [subscription_id]
    return []
