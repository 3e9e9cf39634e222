"""Annotated dependencies routers use: ``session: DbSession``, for hot paths ``db: Db`` (kit.driver),
for reads ``connection: ReadConnection`` or ``session: ReadSession``, ``caller: Caller``, ``settings: Settings``,
and :func:`from_app_state` for the context a service builds once at start-up.

Every service keeps what its handlers need besides the session (settings, keys, adapters, clocks)
in one object on ``app.state``; ``from_app_state`` is the one way a handler reaches it, so a
request that arrives before start-up finished gets a 503 problem, not an AttributeError's 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kit.auth import Principal, current_principal
from kit.db import read_connection, read_session, request_session
from kit.driver import Driver
from kit.errors import Problem
from kit.settings import ServiceSettings

T = TypeVar("T")

DbSession = Annotated[AsyncSession, Depends(request_session, scope="function")]
ReadConnection = Annotated[AsyncConnection, Depends(read_connection)]
ReadSession = Annotated[AsyncSession, Depends(read_session)]


async def driver(request: Request) -> Driver:
    """The service's ``kit.driver.Driver`` (hot paths: Core statements on the driver)."""
    return request.app.state.driver


Db = Annotated[Driver, Depends(driver)]
Caller = Annotated[Principal, Depends(current_principal)]


def from_app_state(name: str, kind: type[T]) -> Callable[[Request], T]:
    """A dependency (and plain function) returning ``app.state.<name>``, which the service set at
    start-up; ``kind`` is for the type checker and for the check that the right object is there."""

    def dependency(request: Request) -> T:
        value = getattr(request.app.state, name, None)
        if value is None:
            raise Problem(503, "not-ready", "Service not ready", "the service is still starting; retry shortly")
        if not isinstance(value, kind):
            raise TypeError(f"app.state.{name} is a {type(value).__name__}, not a {kind.__name__}")
        return value

    dependency.__name__ = f"{name}_context"
    dependency.__doc__ = f"The ``app.state.{name}`` the service built at start-up."
    return dependency


def service_settings(request: Request) -> ServiceSettings:
    """The service's settings (``kit.app.create_service_app`` puts them on ``app.state.settings``)."""
    return from_app_state("settings", ServiceSettings)(request)


Settings = Annotated[ServiceSettings, Depends(service_settings)]
