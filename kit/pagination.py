"""List endpoints paginate alike: ``?page=&page_size=`` in, ``{total, page, page_size, items}`` out.

``page_size`` above the service's ``max_page_size`` (settings, default 100) is a 422 problem naming
``query.page_size``; a number past 64 bits is the same problem, never an overflow in the database.

``Pagination`` is the dependency routes declare; ``PageParams`` is the same two parameters as a
model, for a hot route that reads its query string itself (FastAPI solving a dependency and each
parameter on its own was a tenth of a list request's CPU — issue 15) and documents it from the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from kit.errors import Problem

MAX_PAGE = 10_000  # deep pages are a crawler, not a person; filters narrow a list instead
DEFAULT_PAGE_SIZE = 20
PAGE_DESCRIPTION = "1-based"
PAGE_SIZE_DESCRIPTION = "at most the service's max_page_size (100 by default)"

T = TypeVar("T")


@dataclass(frozen=True)
class PageQuery:
    """Which page a caller asked for, already bounded."""

    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    @property
    def limit(self) -> int:
        return self.page_size

    def answer(self, total: int, items: Sequence[Any], **extra: Any) -> dict[str, Any]:
        """The response body: ``{total, page, page_size, items}`` plus any ``extra`` fields."""
        return {"total": total, "page": self.page, "page_size": self.page_size, "items": list(items), **extra}


def page_size_problem(limit: int) -> Problem:
    return Problem(
        422,
        "validation",
        "Request is not valid",
        f"page_size: at most {limit}",
        errors=[{"field": "query.page_size", "rule": "max", "message": f"at most {limit}"}],
    )


async def page_query(
    request: Request,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description=PAGE_DESCRIPTION)] = 1,
    page_size: Annotated[int, Query(ge=1, description=PAGE_SIZE_DESCRIPTION)] = DEFAULT_PAGE_SIZE,
) -> PageQuery:
    """FastAPI dependency: the bounded page; the limit is ``app.state.settings.max_page_size``.
    (``async`` though it awaits nothing: FastAPI runs a plain ``def`` dependency in a worker
    thread, a hop that cost every list request more than the rest of this function.)"""
    limit: int = request.app.state.settings.max_page_size
    if page_size > limit:
        raise page_size_problem(limit)
    return PageQuery(page=page, page_size=page_size)


Pagination = Annotated[PageQuery, Depends(page_query)]


class PageParams(BaseModel):
    """``?page=&page_size=`` as a model: the parameters ``page_query`` declares, with the same
    bounds, defaults and descriptions (kit/tests/test_pagination.py compares their OpenAPI)."""

    page: int = Field(1, ge=1, le=MAX_PAGE, description=PAGE_DESCRIPTION)
    page_size: int = Field(DEFAULT_PAGE_SIZE, ge=1, description=PAGE_SIZE_DESCRIPTION)

    def bounded(self, limit: int) -> PageQuery:
        """The page, or ``page_query``'s problem when ``page_size`` is above ``limit``
        (the service's ``max_page_size``)."""
        if self.page_size > limit:
            raise page_size_problem(limit)
        return PageQuery(page=self.page, page_size=self.page_size)


class Page(BaseModel, Generic[T]):
    """A page of a list: ``total`` matching rows, this ``page`` of ``page_size``, its ``items``."""

    model_config = ConfigDict(extra="forbid")

    total: int
    page: int
    page_size: int
    items: list[T]
