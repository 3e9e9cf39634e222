"""Licence's HTTP API: translation only; the rules live in the modules it calls."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from kit.deps import Caller, Db, DbSession
from kit.errors import Problem
from kit.pagination import PageQuery, Pagination
from kit.responses import json_answer
from services.licence import catalogue, checks, imports, issuance, lifecycle, reading
from services.licence.context import Context
from services.licence.domain import access
from services.licence.schemas import (
    CODE,
    AccessLogPage,
    CheckOut,
    CheckRequest,
    HoldingsOut,
    HoldingsRequest,
    ImportReport,
    IssueRequest,
    LicenceOut,
    LicencePage,
    LicenceTypeOut,
    ReasonRequest,
    Status,
    VerifyOut,
    VerifyRequest,
)

router = APIRouter()

Identifier = Annotated[str, Path(max_length=128, pattern=r"^[0-9A-Za-z.]{1,128}$")]
Page = Annotated[int, Query(ge=1, le=100_000)]
PageSize = Annotated[int, Query(ge=1, le=100)]


def _ctx(request: Request) -> Context:
    return request.app.state.licence


@router.get("/types", tags=["types"], response_model=list[LicenceTypeOut])
async def list_types(session: DbSession) -> list[dict[str, Any]]:
    """The licence catalogue (public)."""
    return await catalogue.list_types(session)


@router.get("/licences", tags=["wallet"], response_model=LicencePage)
async def my_licences(
    db: Db,
    caller: Caller,
    page: Pagination,
    type: Annotated[str | None, Query(pattern=CODE)] = None,  # noqa: A002 - the public parameter's name
    status: Status | None = None,
) -> Response:
    """The caller's wallet (an agent: the enterprise's licences its mandate covers), answered as
    built (``LicencePage``'s JSON): FastAPI would validate it once more first."""
    return json_answer(await reading.wallet(db, caller, licence_type=type, status=status, page=page))


@router.post("/licences", tags=["issuing"], status_code=201, response_model=LicenceOut)
async def issue(request: Request, session: DbSession, caller: Caller, body: IssueRequest) -> dict[str, Any]:
    """An officer of a department that issues the type issues a licence directly."""
    assert body.holder_code_type is not None  # the model infers it
    licence = await issuance.issue_by_officer(
        session, _ctx(request), caller, licence_type=body.licence_type, holder=body.holder,
        holder_code_type=body.holder_code_type, holder_name=body.holder_name, data=body.data,
        valid_from=body.valid_from, case_no=body.case_no,
    )  # fmt: skip
    return reading.licence_view(licence)


# A small in-process window per client address: verification is public and answers whether a
# guessed identifier and number exist (the gateway limits too; this holds when called directly).
_VERIFY_WINDOWS: OrderedDict[str, tuple[float, int]] = OrderedDict()


def _limit_verification(request: Request) -> None:
    limit = _ctx(request).settings.verify_per_minute
    # Behind the gateway every request comes from the gateway: it sets X-Forwarded-For to the one
    # client address it saw (a client's own header is replaced), so that is whose window counts.
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
    client = forwarded or (request.client.host if request.client else "unknown")
    now = time.monotonic()
    started, count = _VERIFY_WINDOWS.get(client, (now, 0))
    if now - started >= 60:
        started, count = now, 0
    if count >= limit:
        retry = max(1, int(60 - (now - started)))
        raise Problem(429, "rate-limited", "Too many verifications", f"at most {limit} a minute",
                      headers={"Retry-After": str(retry)})  # fmt: skip
    _VERIFY_WINDOWS[client] = (started, count + 1)
    _VERIFY_WINDOWS.move_to_end(client)
    while len(_VERIFY_WINDOWS) > 100_000:
        _VERIFY_WINDOWS.popitem(last=False)


@router.post("/licences/verify", tags=["verification"], response_model=VerifyOut)
async def verify(request: Request, db: Db, body: VerifyRequest) -> Response:
    """Public: the status of a licence from its QR text, or from its identifier and number
    (answered as built, ``VerifyOut``'s JSON)."""
    _limit_verification(request)
    return json_answer(
        await request.app.state.credentials.verify(
            db, _ctx(request), text=body.text, identifier=body.identifier, number=body.number
        )
    )


@router.get("/licences/{identifier}", tags=["wallet"], response_model=LicenceOut)
async def read_licence(request: Request, session: DbSession, caller: Caller, identifier: Identifier) -> dict[str, Any]:
    """The holder, or an officer of the issuing department (that read is logged)."""
    return await reading.read_one(session, _ctx(request), caller, identifier)


@router.get("/licences/{identifier}/access-log", tags=["wallet"], response_model=AccessLogPage)
async def access_log(session: DbSession, caller: Caller, identifier: Identifier, page: Page = 1,
                     page_size: PageSize = 50) -> dict[str, Any]:  # fmt: skip
    """Who read my licence (holder only)."""
    return await reading.access_log(session, caller, identifier, page=PageQuery(page=page, page_size=page_size))


@router.get("/licences/{identifier}/qr", tags=["wallet"])
async def licence_qr(request: Request, session: DbSession, caller: Caller, identifier: Identifier) -> dict[str, Any]:
    """The holder's signed offline credential: ``{text, version, png_base64}``."""
    licence, _ = await reading.authorize(session, caller, identifier, "licence.qr")
    return request.app.state.credentials.qr(licence)


async def _pdf(request: Request, session: DbSession, caller: Caller, identifier: str, action: str) -> Response:
    licence, relation = await reading.authorize(session, caller, identifier, action)
    # pyHanko signs through asyncio.run inside, and rendering is CPU work: both off the event loop.
    document = await asyncio.to_thread(request.app.state.credentials.pdf, licence)
    if document is None:  # no seal configured: nothing unsigned is handed out as a licence
        raise Problem(501, "not-implemented", "PDF not available", "sealed PDFs are not enabled on this deployment")
    if action == "licence.print":  # committed with the answer: no print without its log line
        reading.log_print(session, _ctx(request), caller, licence, relation)
    return Response(document, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{licence.number}.pdf"'})  # fmt: skip


@router.get("/licences/{identifier}/pdf", tags=["wallet"], response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})  # fmt: skip
async def licence_pdf(request: Request, session: DbSession, caller: Caller, identifier: Identifier) -> Response:
    """The holder's signed printable PDF: a download online; from a kiosk or the counter a print,
    written to the access log like ``POST /prints``."""
    return await _pdf(request, session, caller, identifier, access.pdf_action(caller))


@router.post("/licences/{identifier}/prints", tags=["wallet"], response_class=Response, status_code=200,
             responses={200: {"content": {"application/pdf": {}}}})  # fmt: skip
async def print_licence(request: Request, session: DbSession, caller: Caller, identifier: Identifier) -> Response:
    """Print: the signed PDF, and a ``print`` line in the access log (channel, kiosk device, time)."""
    return await _pdf(request, session, caller, identifier, "licence.print")


@router.post("/licences/{identifier}/{action}", tags=["issuing"], response_model=LicenceOut)
async def change_status(request: Request, session: DbSession, caller: Caller, identifier: Identifier,
                        action: Literal["suspend", "reinstate", "revoke"], body: ReasonRequest) -> dict[str, Any]:  # fmt: skip
    """The issuing department suspends, reinstates or revokes a licence, with a reason."""
    return await lifecycle.change_status(session, _ctx(request), caller, identifier, action=action, reason=body.reason)


@router.get("/status-list", tags=["verification"], response_class=Response)
async def status_list(request: Request, session: DbSession) -> Response:
    """Public: the signed status list (deflated COSE_Sign1) of licences not in force."""
    document = await request.app.state.credentials.status_list(session, _ctx(request))
    ttl = _ctx(request).settings.status_list_ttl_seconds
    return Response(document, media_type="application/cose", headers={"Cache-Control": f"public, max-age={ttl}"})


@router.get("/keys", tags=["verification"])
async def keys(request: Request) -> dict[str, Any]:
    """Public: the key set (JWKS) that verifies QR credentials and the status list, retired keys included."""
    return request.app.state.credentials.jwks


@router.post("/imports", tags=["issuing"], response_model=ImportReport)
async def import_licences(request: Request, caller: Caller) -> dict[str, Any]:
    """An issuing department's admin streams existing licences as NDJSON (application/x-ndjson)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in {"application/x-ndjson", "application/ndjson"}:
        raise Problem(415, "unsupported-media-type", "Unsupported media type", "send application/x-ndjson")
    return await imports.run_import(request.app.state.sessionmaker, _ctx(request), caller, request.stream())


@router.post("/holdings", tags=["internal"], response_model=HoldingsOut)
async def holder_licences(request: Request, session: DbSession) -> dict[str, Any]:
    """Internal (caseflow, HMAC-signed): the holder's licences of some types (秒批 facts, 零填报)."""
    relation = await checks.authenticate(request, session, _ctx(request))
    try:
        body = HoldingsRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc
    return await checks.holdings(session, _ctx(request), relation, holder=body.holder,
                                 licence_types=body.licence_types, purpose=body.purpose, case_no=body.case_no)  # fmt: skip


@router.post("/checks", tags=["internal"], response_model=CheckOut, include_in_schema=True)
async def check_licence(request: Request, session: DbSession) -> dict[str, Any]:
    """Internal (caseflow, HMAC-signed): may this licence be used as this case's material?"""
    relation = await checks.authenticate(request, session, _ctx(request))
    try:
        body = CheckRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc
    try:
        return await checks.check(
            session, _ctx(request), relation, identifier=body.identifier, licence_type=body.licence_type,
            holder=body.holder, case_no=body.case_no, material=body.material,
        )  # fmt: skip
    except Problem:
        # The refusal is the answer; the nonce stays used (it was a complete request).
        await session.commit()
        raise
