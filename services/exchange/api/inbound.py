"""HTTP for partners (admin), signed pushes and receipts' keys: translation only; the rules live
in partners.py, pushes.py and domain/. Owned by the inbound work."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from contracts.departments import Receipt
from kit.deps import Caller, DbSession
from kit.errors import Problem
from kit.pagination import Pagination
from kit.signing import SignatureRejected, verify_request
from services.exchange import partners, pushes
from services.exchange.context import app_context
from services.exchange.domain import access
from services.exchange.schemas import (
    DEPARTMENT_CODE,
    PARTNER_ID,
    RESERVED_PARTNER_IDS,
    DepartmentFilter,
    PartnerIn,
    PartnerKeysOut,
    PartnerOut,
    PartnerPage,
    PartnerWithKey,
    PushOut,
    PushPage,
    RevokeIn,
)

router = APIRouter()

PartnerId = Annotated[str, Path(min_length=3, max_length=64, pattern=PARTNER_ID)]
KeyId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^pk_[0-9a-f]{1,37}$")]
DepartmentCode = Annotated[str, Path(min_length=2, max_length=40, pattern=DEPARTMENT_CODE)]
_SIGNED_HEADERS = ("x-partner-id", "x-timestamp", "x-nonce", "x-signature")


# ---- receipts' key ------------------------------------------------------------------------------
@router.get("/.well-known/jwks.json", tags=["receipts"])
async def receipt_keys(request: Request) -> dict[str, Any]:
    """The receipts' public keys (JWKS, Ed25519): verify a receipt's ``signature`` with them."""
    return app_context(request).signer.jwks()


# ---- the gateway's key source (internal) ---------------------------------------------------------
@router.get("/partners/keys", tags=["internal"], response_model=dict[str, PartnerKeysOut])
async def partner_keys(request: Request, session: DbSession) -> dict[str, Any]:
    """Every active partner's active secrets, for the gateway only (signed with its service key;
    the gateway's route table denies this path from outside)."""
    ctx = app_context(request)
    services = {key_id: [secret.get_secret_value()] for key_id, secret in ctx.settings.service_keys.items()}
    relation = access.NONE
    try:
        caller, _ = verify_request(services, method="GET", path=request.url.path, query=request.url.query,
                                   headers=request.headers, body=b"", now=ctx.current_time().timestamp(),
                                   max_age=ctx.settings.signature_max_age_seconds)  # fmt: skip
        relation = access.GATEWAY if caller == "gateway" else access.NONE
    except SignatureRejected:
        pass
    access.check("partner_keys.export", relation, ())
    return await partners.export_keys(session, ctx)


# ---- partners (admin) ---------------------------------------------------------------------------
@router.post("/partners", tags=["partners"], status_code=201, response_model=PartnerWithKey)
async def create_partner(request: Request, session: DbSession, caller: Caller, body: PartnerIn) -> dict[str, Any]:
    """A department system allowed to push for ``department``, with its first key (the secret is
    shown only in this answer)."""
    if body.id in RESERVED_PARTNER_IDS:
        raise Problem(422, "validation", "Request is not valid", "id: reserved word",
                      errors=[{"field": "body.id", "rule": "reserved", "message": "reserved word"}])  # fmt: skip
    return await partners.create_partner(session, app_context(request), caller, partner_id=body.id,
                                         department=body.department, name=body.name)  # fmt: skip


@router.get("/partners", tags=["partners"], response_model=PartnerPage)
async def list_partners(
    session: DbSession, caller: Caller, page: Pagination, department: DepartmentFilter = None,
    status: Literal["active", "revoked"] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Partners of one department (a department's admin: its own by default) or of all."""
    return await partners.list_partners(session, caller, page, department=department, status=status)


@router.get("/partners/{partner_id}", tags=["partners"], response_model=PartnerOut)
async def read_partner(session: DbSession, caller: Caller, partner_id: PartnerId) -> dict[str, Any]:
    """One partner and its keys (never their secrets)."""
    return await partners.read_partner(session, caller, partner_id=partner_id)


@router.post("/partners/{partner_id}/keys", tags=["partners"], status_code=201, response_model=PartnerWithKey)
async def add_key(request: Request, session: DbSession, caller: Caller, partner_id: PartnerId) -> dict[str, Any]:
    """A new key beside the old ones (rotation); the secret is shown only in this answer."""
    return await partners.add_key(session, app_context(request), caller, partner_id=partner_id)


@router.post("/partners/{partner_id}/keys/{key_id}/revoke", tags=["partners"], response_model=PartnerOut)
async def revoke_key(
    request: Request, session: DbSession, caller: Caller, partner_id: PartnerId, key_id: KeyId
) -> dict[str, Any]:
    """The key stops signing at once (exchange checks every push itself)."""
    return await partners.revoke_key(session, app_context(request), caller, partner_id=partner_id, key_id=key_id)


@router.post("/partners/{partner_id}/revoke", tags=["partners"], response_model=PartnerOut)
async def revoke_partner(
    request: Request, session: DbSession, caller: Caller, partner_id: PartnerId, body: RevokeIn
) -> dict[str, Any]:
    """The partner's pushes are refused at once (its keys are kept for a reinstatement)."""
    return await partners.set_status(session, app_context(request), caller, partner_id=partner_id, revoke=True,
                                     reason=body.reason)  # fmt: skip


@router.post("/partners/{partner_id}/reinstate", tags=["partners"], response_model=PartnerOut)
async def reinstate_partner(
    request: Request, session: DbSession, caller: Caller, partner_id: PartnerId
) -> dict[str, Any]:
    """A revoked partner may push again, with its active keys."""
    return await partners.set_status(session, app_context(request), caller, partner_id=partner_id, revoke=False)


# ---- pushes --------------------------------------------------------------------------------------
@router.post("/departments/{code}/events", tags=["pushes"], response_model=Receipt)
async def push_event(request: Request, session: DbSession, code: DepartmentCode) -> dict[str, Any]:
    """A department system's signed push (ADR 0003 signature, checked again here): 200 with a
    signed receipt, new or ``duplicate``; 409 ``event-id-reused`` when the id came with another body."""
    ctx = app_context(request)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > ctx.settings.max_push_bytes:
        raise Problem(413, "body-too-large", "Request body too large", f"at most {ctx.settings.max_push_bytes} bytes")
    body = await _body_within(request, ctx.settings.max_push_bytes)
    headers = {name: request.headers[name] for name in _SIGNED_HEADERS if name in request.headers}
    return await pushes.receive(session, ctx, code=code, query=request.url.query, headers=headers, body=body)


async def _body_within(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it grows past ``limit`` (a chunked body has no length)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "body-too-large", "Request body too large", f"at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/pushes", tags=["pushes"], response_model=PushPage)
async def list_pushes(
    session: DbSession, caller: Caller, page: Pagination, department: DepartmentFilter = None,
    status: Literal["received", "applied", "refused"] | None = None,
    type: Literal["case.progress", "case.decision", "licence.issued"] | None = None,
    event_id: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9._:-]{1,64}$")] = None,
) -> dict[str, Any]:  # fmt: skip
    """A department's pushes, newest first, with their outcomes (admins)."""
    return await pushes.list_pushes(session, caller, page, department=department, status=status, type=type,
                                    event_id=event_id)  # fmt: skip


@router.get("/pushes/{receipt_id}", tags=["pushes"], response_model=PushOut)
async def read_push(
    session: DbSession, caller: Caller,
    receipt_id: Annotated[str, Path(max_length=40, pattern=r"^rcp_[0-9a-f]{32}$")],
) -> dict[str, Any]:  # fmt: skip
    """One push with its body and outcome (admins)."""
    return await pushes.read_push(session, caller, push_id=receipt_id)
