"""Identity's HTTP API: translation only; the rules live in the modules it calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from kit.auth import Principal, require_roles, unauthorized
from kit.deps import Caller, DbSession
from kit.errors import Problem
from kit.masking import mask_id_number
from services.identity import agents, me, officers, registration, sessions, sms_codes, verification
from services.identity.context import identity_of
from services.identity.schemas import (
    ActAsRequest,
    CreateOfficer,
    EnterpriseOut,
    GrantMandate,
    LoginRequest,
    MandateOut,
    Me,
    OfficerLogin,
    OfficerOut,
    PasswordLogin,
    RefreshRequest,
    RegisteredPerson,
    RegisterEnterprise,
    RegisterPerson,
    SmsCodeRequest,
    SmsLogin,
    TokenPair,
    VerificationOut,
    VerificationRequest,
    WeChatLogin,
)

router = APIRouter()


async def live_caller(principal: Caller, session: DbSession) -> Principal:
    """The verified caller whose login session is still live: identity alone knows a logout at
    once (other services rely on the short token lifetime). Uses the request's own session."""
    if await sessions.session_revoked(session, principal.session_id):
        raise unauthorized("session ended")
    return principal


LiveCaller = Annotated[Principal, Depends(live_caller)]


@router.post("/sms-codes", status_code=202, tags=["sessions"])
async def send_sms_code(body: SmsCodeRequest, request: Request, session: DbSession) -> dict:
    ttl = await sms_codes.send_code(session, identity_of(request), mobile=body.mobile, purpose=body.purpose)
    return {"expires_in": ttl}


@router.post("/register", status_code=201, tags=["registration"])
async def register(body: RegisterPerson, request: Request, session: DbSession) -> RegisteredPerson:
    person = await registration.register_person(session, identity_of(request), body)
    return RegisteredPerson(subject=person.id_number, level=person.level)


@router.post("/sessions", status_code=201, tags=["sessions"])
async def login(body: LoginRequest, request: Request, session: DbSession) -> TokenPair:
    identity = identity_of(request)
    if isinstance(body, PasswordLogin):
        return await sessions.login_password(session, identity, body)
    if isinstance(body, SmsLogin):
        return await sessions.login_sms(session, identity, body)
    if isinstance(body, WeChatLogin):
        return await sessions.login_wechat(session, identity, body)
    assert isinstance(body, OfficerLogin)
    return await sessions.login_officer(session, identity, body)


@router.post("/sessions/refresh", tags=["sessions"])
async def refresh(body: RefreshRequest, request: Request, session: DbSession) -> TokenPair:
    return await sessions.refresh(session, identity_of(request), body.refresh_token)


@router.delete("/sessions/current", status_code=204, tags=["sessions"])
async def logout(caller: LiveCaller, session: DbSession) -> Response:
    await sessions.logout(session, caller)
    return Response(status_code=204)


@router.post("/sessions/act-as", status_code=201, tags=["sessions"])
async def act_as(body: ActAsRequest, caller: LiveCaller, request: Request, session: DbSession) -> TokenPair:
    return await sessions.act_as(session, identity_of(request), caller, body.enterprise)


@router.get("/me", tags=["me"])
async def get_me(caller: LiveCaller, session: DbSession) -> Me:
    return await me.describe(session, caller)


@router.post("/me/verification", tags=["me"])
async def verify_me(
    body: VerificationRequest, caller: LiveCaller, request: Request, session: DbSession
) -> VerificationOut:
    person = await verification.verify_self(session, identity_of(request), caller, body)
    return VerificationOut(level=person.level, method=body.method)


@router.post("/persons/{id_number}/counter-verification", tags=["officers"])
async def counter_verification(id_number: str, caller: LiveCaller, session: DbSession) -> VerificationOut:
    person = await verification.verify_at_counter(session, caller, id_number.upper())
    return VerificationOut(level=person.level, method="counter")


@router.post("/enterprises", status_code=201, tags=["enterprises"])
async def register_enterprise(body: RegisterEnterprise, caller: LiveCaller, session: DbSession) -> EnterpriseOut:
    enterprise = await registration.register_enterprise(session, caller, body)
    return EnterpriseOut(
        uscc=enterprise.uscc,
        name=enterprise.name,
        legal_representative=mask_id_number(enterprise.legal_representative),
        role="legal_representative",
    )


@router.post("/enterprises/{uscc}/agents", status_code=201, tags=["enterprises"])
async def grant_mandate(uscc: str, body: GrantMandate, caller: LiveCaller, session: DbSession) -> MandateOut:
    return agents.mandate_out(await agents.grant(session, caller, uscc.upper(), body))


@router.get("/enterprises/{uscc}/agents", tags=["enterprises"])
async def list_mandates(uscc: str, caller: LiveCaller, session: DbSession) -> list[MandateOut]:
    return [agents.mandate_out(m) for m in await agents.list_for_enterprise(session, caller, uscc.upper())]


@router.delete("/enterprises/{uscc}/agents/{mandate_id}", status_code=204, tags=["enterprises"])
async def revoke_mandate(uscc: str, mandate_id: str, caller: LiveCaller, session: DbSession) -> Response:
    await agents.revoke(session, caller, uscc.upper(), mandate_id)
    return Response(status_code=204)


@router.post("/officers", status_code=201, tags=["officers"])
async def create_officer(body: CreateOfficer, caller: LiveCaller, request: Request, session: DbSession) -> OfficerOut:
    require_roles(caller, "admin")
    officer = await officers.create_officer(
        session, identity_of(request).passwords, body, created_by=officers.officer_login_of(caller.subject)
    )
    return OfficerOut(
        login=officer.login, name=officer.name, department=officer.department, roles=officer.roles.split(",")
    )


@router.get("/.well-known/jwks.json", tags=["keys"])
async def jwks(request: Request) -> dict:
    return identity_of(request).keyring.jwks()


def sandbox_router() -> APIRouter:
    """Only mounted while the SMS adapter is the sandbox: what it 'sent' to a mobile, newest first."""
    sandbox = APIRouter(tags=["sandbox"])

    @sandbox.get("/sandbox/sms")
    async def sandbox_sms(mobile: str, request: Request) -> list[dict]:
        return identity_of(request).adapters.sms.sent_to(mobile)[:20]

    return sandbox


__all__ = ["router", "sandbox_router", "Principal", "Problem"]
