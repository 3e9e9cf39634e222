"""Reading licences: the holder's wallet, one licence, its access log.

Every read by anyone but the holder's side (an officer of the issuing department here, caseflow in
``checks``) is written to the access log in the same transaction as the answer: no unlogged read.
"""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ARRAY, String, any_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.driver import Driver, Query
from kit.masking import mask_id_number
from kit.pagination import PageQuery
from services.licence.context import Context
from services.licence.domain import access
from services.licence.models import AccessEntry, Licence


def licence_view(licence: Licence | SimpleNamespace) -> dict[str, Any]:
    """A licence as its holder (or the issuing department) sees it: GB/T 36903 metadata and data
    (a ``Licence``, or a driver's row of the licences table as a namespace)."""
    return {
        "identifier": licence.identifier,
        "name": licence.name,
        "licence_type": licence.type_code,
        "number": licence.number,
        "issuer": licence.issuer,
        "issuer_code": licence.issuer_code,
        "issuer_name": licence.issuer_name,
        "issued_on": licence.issued_on,
        "valid_from": licence.valid_from,
        "valid_until": licence.valid_until,
        "holder": licence.holder,
        "holder_name": licence.holder_name,
        "holder_code_type": licence.holder_code_type,
        "jurisdiction": licence.jurisdiction,
        "data": json.loads(licence.data),
        "status": licence.status,
        "status_reason": licence.status_reason,
        "version": licence.version,
        "source": licence.source,
        "case_no": licence.case_no,
    }


async def find(session: AsyncSession, identifier: str, *, lock: bool = False) -> Licence | None:
    """The licence with this identifier (locked FOR UPDATE on PostgreSQL when ``lock``)."""
    query = select(Licence).where(Licence.identifier == identifier)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def authorize(session: AsyncSession, principal: Principal, identifier: str, action: str, *,
                    lock: bool = False) -> tuple[Licence, str]:  # fmt: skip
    """The licence and the caller's relation to it, after the access table allowed ``action``.

    A licence that does not exist and one the caller may not read are the same 404."""
    licence = await find(session, identifier, lock=lock)
    if licence is None:
        access.check(action, access.NONE, ())  # the same 404 as for a licence one may not see
        raise AssertionError("unreachable")
    relation = access.licence_relation(
        principal, holder=licence.holder, issuer=licence.issuer, licence_type=licence.type_code
    )
    access.check(action, relation, principal.roles)
    return licence, relation


def log_read(session: AsyncSession, ctx: Context, licence: Licence, *, reader: str, reader_kind: str,
             case_no: str | None, purpose: str) -> None:  # fmt: skip
    """Write one access-log entry (flushed with the request's transaction)."""
    session.add(
        AccessEntry(
            licence_id=licence.id,
            reader=reader,
            reader_kind=reader_kind,
            case_no=case_no,
            purpose=purpose,
            at=ctx.current_time(),
        )  # fmt: skip
    )


def print_reader(principal: Principal, relation: str) -> str:
    """Who printed, as the holder sees it: the kiosk's device, the counter's officer, or the holder
    (an agent's ID number masked) — never a full ID number."""
    if principal.channel == "kiosk" and principal.device:
        return f"kiosk:{principal.device}"[:80]
    if principal.channel == "counter" and principal.helper:
        return principal.helper[:80]
    if relation == access.AGENT and principal.actor:
        return f"agent:{mask_id_number(principal.actor)}"[:80]
    return relation


def log_print(session: AsyncSession, ctx: Context, principal: Principal, licence: Licence, relation: str) -> None:
    """One print in the licence's access log: channel, the kiosk's device id, when (same transaction)."""
    session.add(
        AccessEntry(
            licence_id=licence.id,
            reader=print_reader(principal, relation),
            reader_kind=relation,
            case_no=None,
            purpose=f"print:{principal.channel}",
            at=ctx.current_time(),
            action="print",
            channel=principal.channel[:10],
            device=(principal.device or None) and principal.device[:64],
        )  # fmt: skip
    )


async def read_one(session: AsyncSession, ctx: Context, principal: Principal, identifier: str,
                   *, purpose: str | None = None) -> dict[str, Any]:  # fmt: skip
    """GET /licences/{identifier}: the holder's side reads freely; an issuing officer's read is logged."""
    licence, relation = await authorize(session, principal, identifier, "licence.read")
    if relation in access.LOGGED_RELATIONS:
        log_read(session, ctx, licence, reader=principal.subject, reader_kind="officer", case_no=None,
                 purpose=purpose or f"officer:{principal.department}")  # fmt: skip
    return licence_view(licence)


async def wallet(db: Driver, principal: Principal, *, licence_type: str | None,
                 status: str | None, page: PageQuery) -> dict[str, Any]:  # fmt: skip
    """GET /licences: the caller's own licences (an agent: the enterprise's, within its mandate),
    as plain JSON data (``LicencePage``).

    A hot read (issue 15): a statement built once per filter, on the driver, and the page carries
    the total (a window count; a holder has a handful of licences), so one statement unless the
    page is past the end."""
    access.check("wallet.list", access.wallet_relation(principal), principal.roles)
    covered = access.covered_types(principal)
    page_query, count_query = _wallet_queries(
        db.is_postgresql, covered=covered is not None, by_type=bool(licence_type), by_status=bool(status)
    )
    params: dict[str, Any] = {
        "holder": principal.subject, "covered": sorted(covered or ()), "wanted_type": licence_type,
        "wanted_status": status,
    }  # fmt: skip
    rows = await db.fetch(page_query, {**params, "skip": page.offset, "take": page.limit})
    if rows:
        total = rows[0]["wallet_total"]
    elif page.offset:
        total = await db.fetchval(count_query, params)
    else:
        total = 0
    return page.answer(total, [_as_json(licence_view(SimpleNamespace(**row))) for row in rows])


_WALLET: dict[tuple[bool, bool, bool, bool], tuple[Query, Query]] = {}


def _wallet_queries(postgresql: bool, *, covered: bool, by_type: bool, by_status: bool) -> tuple[Query, Query]:
    """The wallet's page and count statements for one combination of filters, built on first use.

    An agent's covered types are one array parameter: ``= ANY`` on PostgreSQL (the driver takes no
    expanding ``IN``), an expanding ``IN`` on SQLite (no arrays; it runs through SQLAlchemy)."""
    key = (postgresql, covered, by_type, by_status)
    found = _WALLET.get(key)
    if found is None:
        conditions = [Licence.holder == bindparam("holder")]
        if covered:
            conditions.append(
                Licence.type_code == any_(bindparam("covered", type_=ARRAY(String)))
                if postgresql
                else Licence.type_code.in_(bindparam("covered", expanding=True))
            )
        if by_type:
            conditions.append(Licence.type_code == bindparam("wanted_type"))
        if by_status:
            conditions.append(Licence.status == bindparam("wanted_status"))
        rows = (
            select(Licence.__table__, func.count().over().label("wallet_total"))
            .where(*conditions)
            .order_by(Licence.id.desc())
            .offset(bindparam("skip"))
            .limit(bindparam("take"))
        )
        found = _WALLET[key] = (Query(rows), Query(select(func.count()).where(*conditions)))
    return found


def _as_json(view: dict[str, Any]) -> dict[str, Any]:
    """A ``licence_view`` as ``LicenceOut`` writes it: its dates in ISO 8601."""
    return {key: value.isoformat() if isinstance(value, date) else value for key, value in view.items()}


async def access_log(session: AsyncSession, principal: Principal, identifier: str, *,
                     page: PageQuery) -> dict[str, Any]:  # fmt: skip
    """GET /licences/{identifier}/access-log: who read my licence, newest first."""
    licence, _ = await authorize(session, principal, identifier, "licence.access_log")
    query = select(AccessEntry).where(AccessEntry.licence_id == licence.id)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (
        await session.execute(query.order_by(AccessEntry.id.desc()).offset(page.offset).limit(page.limit))
    ).scalars()
    return page.answer(
        total,
        [
            {
                "reader": e.reader,
                "reader_kind": e.reader_kind,
                "case_no": e.case_no,
                "purpose": e.purpose,
                "at": e.at,
                "action": e.action,
                "channel": e.channel,
                "device": e.device,
            }  # fmt: skip
            for e in rows
        ],
    )
