"""HTTP for subscriptions and deliveries (admin). Owned by the outbound work: translation only;
the rules live in subscriptions.py, deliveries.py and domain/."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from kit.deps import Caller, DbSession
from kit.pagination import Pagination
from services.exchange import deliveries, subscriptions
from services.exchange.context import ExchangeContext, app_context
from services.exchange.schemas import (
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    DeliveryStatus,
    DepartmentFilter,
    ReplayOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPage,
    SubscriptionWithSecret,
)

router = APIRouter()

Context = Annotated[ExchangeContext, Depends(app_context)]
SubscriptionId = Annotated[str, Path(pattern=r"^sub_[A-Za-z0-9_-]{1,36}$", max_length=40)]
DeliveryId = Annotated[str, Path(pattern=r"^msg_[A-Za-z0-9]{1,36}$", max_length=40)]


@router.post("/subscriptions", tags=["webhooks"], status_code=201, response_model=SubscriptionWithSecret)
async def create_subscription(session: DbSession, ctx: Context, caller: Caller, body: SubscriptionIn) -> dict[str, Any]:
    """Subscribe a department system's endpoint; the answer holds its signing secret, once (made
    here unless the body brings one, as Svix allows)."""
    created, secret = await subscriptions.create(
        session, ctx, caller, department=body.department, url=body.url, event_types=list(body.event_types),
        secret=body.secret.get_secret_value() if body.secret else None,
    )  # fmt: skip
    return {**created, "secret": secret}


@router.get("/subscriptions", tags=["webhooks"], response_model=SubscriptionPage)
async def list_subscriptions(session: DbSession, caller: Caller, page: Pagination,
                             department: DepartmentFilter = None) -> dict[str, Any]:  # fmt: skip
    """A department's subscriptions (the caller's own department unless the platform's admin)."""
    return await subscriptions.list_for(session, caller, page, department=department)


@router.get("/subscriptions/{subscription_id}", tags=["webhooks"], response_model=SubscriptionOut)
async def read_subscription(session: DbSession, caller: Caller, subscription_id: SubscriptionId) -> dict[str, Any]:
    """One subscription (never its secret)."""
    return await subscriptions.read(session, caller, subscription_id)


@router.post("/subscriptions/{subscription_id}/disable", tags=["webhooks"], response_model=SubscriptionOut)
async def disable_subscription(session: DbSession, ctx: Context, caller: Caller,
                               subscription_id: SubscriptionId) -> dict[str, Any]:  # fmt: skip
    """Nothing new is queued for it; what is queued waits until it is enabled again."""
    return await subscriptions.set_status(session, ctx, caller, subscription_id, active=False)


@router.post("/subscriptions/{subscription_id}/enable", tags=["webhooks"], response_model=SubscriptionOut)
async def enable_subscription(session: DbSession, ctx: Context, caller: Caller,
                              subscription_id: SubscriptionId) -> dict[str, Any]:  # fmt: skip
    """Deliveries go again, in order, starting with what waited."""
    return await subscriptions.set_status(session, ctx, caller, subscription_id, active=True)


@router.post("/subscriptions/{subscription_id}/rotate-secret", tags=["webhooks"], response_model=SubscriptionWithSecret)
async def rotate_secret(
    session: DbSession, ctx: Context, caller: Caller, subscription_id: SubscriptionId
) -> dict[str, Any]:
    """A new signing secret, shown once; the previous one signs too for a while (ADR 0020)."""
    rotated, secret = await subscriptions.rotate_secret(session, ctx, caller, subscription_id)
    return {**rotated, "secret": secret}


@router.post("/subscriptions/{subscription_id}/replay", tags=["webhooks"], response_model=ReplayOut)
async def replay_subscription(
    session: DbSession, ctx: Context, caller: Caller, subscription_id: SubscriptionId,
    since: Annotated[datetime | None, Query(description="also what was delivered since then; without: the dead ones")] = None,
) -> dict[str, Any]:  # fmt: skip
    """Dead deliveries (with ``since``: dead and delivered ones since then) go again, in order."""
    return await subscriptions.replay(session, ctx, caller, subscription_id, since=since)


@router.get("/deliveries", tags=["webhooks"], response_model=DeliveryPage)
async def list_deliveries(
    session: DbSession, caller: Caller, page: Pagination, department: DepartmentFilter = None,
    status: DeliveryStatus | None = None,
    case_no: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9-]{1,40}$", max_length=40)] = None,
) -> dict[str, Any]:  # fmt: skip
    """A department's deliveries, newest first."""
    return await deliveries.list_deliveries(session, caller, page, department=department, status=status,
                                            case_no=case_no)  # fmt: skip


@router.get("/deliveries/{delivery_id}", tags=["webhooks"], response_model=DeliveryDetail)
async def read_delivery(session: DbSession, caller: Caller, delivery_id: DeliveryId) -> dict[str, Any]:
    """One delivery, its body as sent and every attempt."""
    return await deliveries.read_delivery(session, caller, delivery_id)


@router.post("/deliveries/{delivery_id}/replay", tags=["webhooks"], response_model=DeliveryOut)
async def replay_delivery(session: DbSession, ctx: Context, caller: Caller, delivery_id: DeliveryId) -> dict[str, Any]:
    """A dead or delivered delivery goes again: same webhook-id and body, attempts from zero."""
    return await deliveries.replay_delivery(session, caller, delivery_id, now=ctx.current_time())
