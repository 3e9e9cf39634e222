"""Catalog's HTTP API: translation only; the rules live in the modules it calls.

Reads are public; writes need an officer with the admin role of the matter's department.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from kit.auth import Principal
from kit.deps import Caller, Db, DbSession, ReadSession
from kit.pagination import Page, Pagination
from kit.text import Line
from services.catalog import directory, matters
from services.catalog.domain import access
from services.catalog.domain.guide import CODE_PATTERN, Guide, MatterType, PublishRequest
from services.catalog.domain.query import MatterQuery

router = APIRouter()


async def some_admin(caller: Caller) -> Principal:
    access.require_some_admin(caller)
    return caller


Admin = Annotated[Principal, Depends(some_admin)]


# Version numbers are stored as 32-bit integers: a larger one (a number past 64 bits included) is a
# 422 problem naming the parameter, never an overflow in the database driver.
MAX_VERSION = 2_147_483_647
Version = Annotated[int, Path(ge=1, le=MAX_VERSION)]
# Codes in paths and filters keep to their published shapes: a NUL or a lone surrogate is a 422
# naming the parameter, not a string PostgreSQL refuses mid-query.
MatterCode = Annotated[str, Path(max_length=64, pattern=CODE_PATTERN)]
Code = Annotated[str | None, Query(max_length=64, pattern=CODE_PATTERN)]


@router.get("/matters", tags=["matters"], response_model=Page[dict[str, Any]])
async def search_matters(
    request: Request,
    session: ReadSession,
    pages: Pagination,
    q: Annotated[Line | None, Query(max_length=100)] = None,
    department: Code = None,
    type: MatterType | None = None,  # noqa: A002 - the public query parameter is called type
    audience: Literal["person", "enterprise"] | None = None,
    theme: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_-]{1,40}$")] = None,
    depth: Annotated[int | None, Query(ge=1, le=4)] = None,
    max_visits: Annotated[int | None, Query(ge=0, le=5)] = None,
    online: bool | None = None,
) -> dict[str, Any]:
    query = MatterQuery(
        q=q,
        department=department,
        matter_type=type,
        audience=audience,
        theme=theme,
        depth=depth,
        max_visits=max_visits,
        online=online,
        page=pages.page,
        page_size=pages.page_size,
    )
    cache = request.app.state.search_index
    if cache is None:
        return await matters.search_database(session, query)
    return (await cache.current(session)).search(query)


@router.post("/matters", status_code=201, tags=["matters"])
async def create_matter(guide: Guide, session: DbSession, caller: Admin) -> dict[str, Any]:
    row = await matters.create_draft(session, guide=guide, principal=caller)
    return matters.version_out(row)


@router.get("/matters/{code}", tags=["matters"], response_model=dict[str, Any])
async def matter_detail(code: MatterCode, db: Db) -> Response:
    # The stored guide is already JSON: splice it in rather than parse and re-encode it.
    return Response(await matters.detail_json(db, code=code), media_type="application/json")


@router.get("/matters/{code}/versions", tags=["versions"])
async def matter_versions(code: MatterCode, session: ReadSession) -> list[dict[str, Any]]:
    return await matters.list_versions(session, code=code)


@router.get("/matters/{code}/versions/{version}", tags=["versions"])
async def matter_version(code: MatterCode, version: Version, session: ReadSession) -> dict[str, Any]:
    return matters.version_out(await matters.get_version(session, code=code, version=version))


@router.put("/matters/{code}/versions/{version}", tags=["versions"])
async def update_version(
    code: MatterCode, version: Version, guide: Guide, session: DbSession, caller: Admin
) -> dict[str, Any]:
    row = await matters.update_draft(session, code=code, version=version, guide=guide, principal=caller)
    return matters.version_out(row)


@router.post("/matters/{code}/versions/{version}/publish", tags=["versions"])
async def publish_version(
    code: MatterCode,
    version: Version,
    session: DbSession,
    caller: Admin,
    body: Annotated[PublishRequest | None, Body()] = None,
) -> dict[str, Any]:
    row = await matters.publish(
        session, code=code, version=version, principal=caller, effective_from=body.effective_from if body else None
    )
    return matters.version_out(row)


@router.post("/matters/{code}/retire", tags=["versions"])
async def retire_matter(code: MatterCode, session: DbSession, caller: Admin) -> dict[str, Any]:
    return matters.version_out(await matters.retire(session, code=code, principal=caller), with_guide=False)


@router.get("/matters/{code}/diff", tags=["versions"])
async def diff_versions(
    code: MatterCode,
    session: ReadSession,
    from_version: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=MAX_VERSION)],
) -> dict[str, Any]:
    return await matters.version_diff(session, code=code, from_version=from_version, to_version=to_version)


@router.get("/departments", tags=["directory"])
async def list_departments(
    session: ReadSession, division: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None
) -> list[dict[str, Any]]:
    return await directory.departments(session, division=division)


@router.get("/divisions", tags=["directory"])
async def list_divisions(session: ReadSession) -> list[dict[str, Any]]:
    return await directory.divisions(session)


@router.get("/themes", tags=["directory"])
async def list_themes(session: ReadSession) -> list[dict[str, Any]]:
    return await directory.themes(session)


@router.get("/bundles", tags=["bundles"])
async def list_bundles(session: ReadSession) -> list[dict[str, Any]]:
    return await directory.list_bundles(session)


@router.get("/bundles/{code}", tags=["bundles"])
async def bundle_detail(code: MatterCode, session: ReadSession) -> dict[str, Any]:
    return await directory.bundle_detail(session, code=code)
