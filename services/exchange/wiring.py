"""What main.py starts for each half of the service: consumers, background workers.

Each half owns its functions here (inbound: ``inbound_*``; outbound: ``outbound_*``)."""

from __future__ import annotations

from fastapi import FastAPI

from kit.consumer import EventConsumer
from services.exchange.settings import Settings


def inbound_consumers(settings: Settings, app: FastAPI) -> list[EventConsumer]:
    """caseflow.push.settled and licence.push.settled → the push's outcome."""
    return []


async def inbound_start(settings: Settings, app: FastAPI) -> None:
    """Load the receipt key."""


async def inbound_stop(app: FastAPI) -> None:
    """Nothing yet."""


def outbound_consumers(settings: Settings, app: FastAPI) -> list[EventConsumer]:
    """caseflow case events → deliveries to the departments' subscriptions."""
    return []


async def outbound_start(settings: Settings, app: FastAPI) -> None:
    """Start the delivery worker."""


async def outbound_stop(app: FastAPI) -> None:
    """Stop the delivery worker."""
