"""Reading a department's rows through the access table (domain/access.py), for both halves:
one object (``visible``) and one page of a list (``department_page``). Partners, pushes,
subscriptions and deliveries each belong to one department (their ``department`` column)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.pagination import PageQuery
from services.exchange.domain import access

Row = TypeVar("Row")


async def visible(session: AsyncSession, caller: Principal, model: type[Row], object_id: str, action: str) -> Row:
    """The row, once the caller may take ``action`` on it; 404 worded as for a missing one when
    it may not even see it."""
    row = await session.get(model, object_id)
    if row is None:
        raise access.missing(action)
    access.check(action, access.relation_to(caller, row.department), caller.roles)  # type: ignore[attr-defined]
    return row


async def department_page(
    session: AsyncSession, caller: Principal, page: PageQuery, *, action: str, model: type[Row],
    department: str | None, filters: Sequence[tuple[Any, Any]] = (), order_by: Sequence[Any],
) -> tuple[int, list[Row]]:  # fmt: skip
    """``(total, rows of the page)`` of a list: of the department asked for, or the caller's own
    (a department's officer asking for none), or of all (a platform officer asking for none);
    ``filters`` are ``(column, value)`` pairs, a ``None`` value not filtering."""
    scope = access.list_scope(caller, department)
    access.check(action, access.relation_to(caller, scope), caller.roles)
    pairs = ((model.department, scope), *filters)  # type: ignore[attr-defined]
    where = [column == value for column, value in pairs if value is not None]
    total = await session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    rows = await session.scalars(select(model).where(*where).order_by(*order_by).offset(page.offset).limit(page.limit))
    return total, list(rows.all())
