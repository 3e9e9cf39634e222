"""POST /checks: caseflow asks whether a licence given as application material may be used.

Internal only (the gateway denies the path): the caller signs the request with HMAC-SHA256 under
its key id (``kit.signing``, ADR 0003's scheme); a nonce is accepted once (``service_nonces``, shared
by replicas). The answer names the licence for the case; a refusal is a 422 whose one error says
which rule failed — ``not_found``, ``holder`` (never revealing whose licence it is),
``licence_type`` or ``status``. A successful check is a read of the licence by caseflow and is
written to the holder's access log.
"""

from __future__ import annotations

import json
import random
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from kit.errors import Problem, field_problem
from kit.signing import SignatureRejected, verify_request
from services.licence.context import Context
from services.licence.domain import access, states
from services.licence.issuance import insert_for
from services.licence.models import Licence, ServiceNonce
from services.licence.reading import find, log_read


def _unauthorized(reason: str, detail: str) -> Problem:
    return Problem(401, "unauthorized", "Signature required", detail, reason=reason,
                   headers={"WWW-Authenticate": 'HMAC-SHA256 realm="licence"'})  # fmt: skip


async def authenticate(request: Request, session: AsyncSession, ctx: Context) -> str:
    """The relation of a signed internal caller (``caseflow`` for its key id); 401 otherwise."""
    body = await request.body()
    keys = {key_id: [secret.get_secret_value()] for key_id, secret in ctx.settings.service_keys.items()}
    max_age = ctx.settings.signature_max_age_seconds
    try:
        key_id, nonce = verify_request(keys, method=request.method, path=request.url.path, query=request.url.query,
                                       headers=request.headers, body=body, now=time.time(), max_age=max_age)  # fmt: skip
    except SignatureRejected as exc:
        raise _unauthorized(exc.reason, exc.detail) from exc
    now = ctx.current_time()
    claimed = await session.execute(
        insert_for(session)(ServiceNonce).values(partner=key_id, nonce=nonce, seen_at=now).on_conflict_do_nothing()
    )
    if claimed.rowcount == 0:
        raise _unauthorized("replay", "this nonce was used before")
    if random.random() < 0.02:  # now and then, forget nonces older than any acceptable timestamp
        await session.execute(delete(ServiceNonce).where(ServiceNonce.seen_at < now - timedelta(seconds=2 * max_age)))
    return access.CASEFLOW if key_id == "caseflow" else access.NONE


def _refused(rule: str, message: str) -> Problem:
    return field_problem("identifier", rule, message)


async def check(session: AsyncSession, ctx: Context, relation: str, *, identifier: str, licence_type: str,
                holder: str, case_no: str | None, material: str) -> dict[str, Any]:  # fmt: skip
    """The check's answer (200 body) or a 422 naming the rule that failed."""
    access.check("licence.check", relation, ())
    licence = await find(session, identifier)
    if licence is None:
        raise _refused("not_found", "no such licence")
    if licence.holder != holder:
        raise _refused("holder", "the licence is not the applicant's")
    if licence.type_code != licence_type:
        raise _refused("licence_type", f"the licence is not a {licence_type}")
    status = licence.status
    if status == states.VALID and licence.valid_until is not None and licence.valid_until < ctx.today():
        status = states.EXPIRED  # ended today and the timer has not run yet: not usable either
    if not states.usable(status):
        problem = _refused("status", f"the licence is {status}")
        problem.extra["licence_status"] = status
        raise problem
    log_read(session, ctx, licence, reader="caseflow", reader_kind="service", case_no=case_no,
             purpose=f"material:{material}")  # fmt: skip
    return {
        "identifier": licence.identifier,
        "licence_type": licence.type_code,
        "number": licence.number,
        "holder": licence.holder,
        "holder_name": licence.holder_name,
        "status": status,
        "version": licence.version,
        "valid_until": licence.valid_until,
    }


async def holdings(session: AsyncSession, ctx: Context, relation: str, *, holder: str, licence_types: list[str],
                   purpose: str, case_no: str | None) -> dict[str, Any]:  # fmt: skip
    """POST /holdings: the holder's licences of the given types (秒批 facts, 零填报 values), newest
    first, each with its status as of today (a valid one past its end date is ``expired``) and its
    data. Every licence returned is a read by caseflow, written to the holder's access log."""
    access.check("licence.holdings", relation, ())
    rows = (
        await session.execute(
            select(Licence)
            .where(Licence.holder == holder, Licence.type_code.in_(sorted(set(licence_types))))
            .order_by(Licence.issued_on.desc(), Licence.id.desc())
            .limit(50)
        )
    ).scalars().all()  # fmt: skip
    today = ctx.today()
    out = []
    for licence in rows:
        status = licence.status
        if status == states.VALID and licence.valid_until is not None and licence.valid_until < today:
            status = states.EXPIRED
        log_read(session, ctx, licence, reader="caseflow", reader_kind="service", case_no=case_no, purpose=purpose)
        out.append({"identifier": licence.identifier, "licence_type": licence.type_code, "number": licence.number,
                    "status": status, "valid_until": licence.valid_until, "data": json.loads(licence.data)})  # fmt: skip
    return {"holder": holder, "holder_name": rows[0].holder_name if rows else None, "licences": out}
