"""Identity's HTTP API: translation only; the rules live in the modules it calls."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from kit.auth import Principal, unauthorized
from kit.deps import Caller, Db, DbSession
from kit.errors import Problem
from kit.masking import mask_id_number
from kit.responses import json_answer
from services.identity import (
    agents,
    counter,
    kiosk_sessions,
    kiosks,
    me,
    officers,
    registration,
    sessions,
    sms_codes,
    verification,
)
from services.identity.adapters.enterprises import SandboxEnterpriseRegistry
from services.identity.adapters.sms import SandboxSms
from services.identity.context import identity_of
from services.identity.schemas import (
    ActAsRequest,
    ChangeOfficer,
    CounterSessionRequest,
    CreateOfficer,
    DeviceId,
    EnterpriseOut,
    GrantMandate,
    HallCode,
    IdNumber,
    KioskKeysOut,
    KioskOut,
    KioskSessionRequest,
    KioskWithSecret,
    LoginRequest,
    MandateOut,
    Me,
    Mobile,
    OfficerLogin,
    OfficerLoginName,
    OfficerOut,
    PasswordLogin,
    RefreshRequest,
    RegisteredPerson,
    RegisterEnterprise,
    RegisterKiosk,
    RegisterPerson,
    SmsCodeRequest,
    SmsLogin,
    TokenPair,
    Uscc,
    VerificationOut,
    VerificationRequest,
    WeChatLogin,
)

router = APIRouter()


async def live_caller(principal: Caller, session: DbSession) -> Principal:
    """The verified caller whose token identity has not revoked: identity checks its own records
    (session, officer, mandate) at once; other services learn it from identity.tokens.revoked."""
    if await sessions.token_revoked(session, principal):
        raise unauthorized("session ended or token revoked")
    return principal


LiveCaller = Annotated[Principal, Depends(live_caller)]
UsccPath = Annotated[Uscc, Path(description="unified social credit code")]
IdNumberPath = Annotated[IdNumber, Path(description="resident ID number")]
OfficerLoginPath = Annotated[OfficerLoginName, Path()]


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
    """A new token pair for the same login session (the refresh token is single use).

    The access token is built from identity's records now: after the real-name level rose
    (``POST /me/verification`` to L2 or L3, a counter check to L4) the refreshed token carries the
    new level (``lvl`` claim, ``level`` field), and an officer's changed roles show here."""
    return await sessions.refresh(session, identity_of(request), body.refresh_token)


@router.delete("/sessions/current", status_code=204, tags=["sessions"])
async def logout(caller: LiveCaller, request: Request, session: DbSession) -> Response:
    """End the login session: its refresh tokens stop at once and its access tokens are revoked
    everywhere (identity.tokens.revoked)."""
    await sessions.logout(session, identity_of(request), caller)
    return Response(status_code=204)


@router.post("/sessions/act-as", status_code=201, tags=["sessions"])
async def act_as(body: ActAsRequest, caller: LiveCaller, request: Request, session: DbSession) -> TokenPair:
    return await sessions.act_as(session, identity_of(request), caller, body.enterprise)


@router.get("/me", tags=["me"], response_model=Me)
async def get_me(caller: Caller, db: Db) -> Response:
    """Checks the token as ``LiveCaller`` does, inside the read (one statement for a person).
    Answered as built (``Me``'s JSON): FastAPI would validate it once more first."""
    described = await me.describe(db, caller)
    if described is None:
        raise unauthorized("session ended or token revoked")
    return json_answer(described)


@router.post("/me/verification", tags=["me"])
async def verify_me(
    body: VerificationRequest, caller: LiveCaller, request: Request, session: DbSession
) -> VerificationOut:
    person = await verification.verify_self(session, identity_of(request), caller, body)
    return VerificationOut(level=person.level, method=body.method)


@router.post("/persons/{id_number}/counter-verification", tags=["officers"])
async def counter_verification(id_number: IdNumberPath, caller: LiveCaller, session: DbSession) -> VerificationOut:
    """Real-name L4: a counter officer (role ``counter``) saw the person and the ID card."""
    person = await verification.verify_at_counter(session, caller, id_number)
    return VerificationOut(level=person.level, method="counter")


UNAVAILABLE = {503: {"description": "The population registry or the ID card check did not answer; nothing changed"}}
NO_KIOSKS = {503: {"description": "Kiosks are not configured (no IDENTITY_SECRETS_KEY)"}}


@router.post("/counter-sessions", status_code=201, tags=["hall"], responses=UNAVAILABLE)
async def counter_session(
    body: CounterSessionRequest, caller: LiveCaller, request: Request, session: DbSession
) -> TokenPair:
    """一窗受理: a counter officer (role ``counter``) verified the person in person with their ID
    card; the population registry confirms number and name, the person is raised to L4 (made known
    if they never registered) and a 30-minute token FOR THE PERSON is returned (``chn: counter``,
    the officer in ``hlp``; no refresh token). The officer's logout or disabling revokes it."""
    return await counter.counter_session(session, identity_of(request), caller, body)


@router.post(
    "/kiosk-sessions",
    status_code=201,
    tags=["hall"],
    responses=UNAVAILABLE,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": KioskSessionRequest.model_json_schema()}},
        }
    },
)
async def kiosk_session(request: Request, session: DbSession) -> TokenPair:
    """7×24 自助: a kiosk read a person's ID card. Signed by the kiosk device (ADR 0003 headers, its
    device id as ``X-Partner-Id``, over ``POST /api/v1/identity/kiosk-sessions``), checked here
    again; the card read goes to the ID-card check. A 10-minute token for the person (``chn: kiosk``,
    ``dev``), valid at the gateway only on requests the same kiosk signs."""
    return await kiosk_sessions.kiosk_session(session, identity_of(request), request)


@router.post("/kiosks", status_code=201, tags=["hall"], responses=NO_KIOSKS)
async def register_kiosk(
    body: RegisterKiosk, caller: LiveCaller, request: Request, session: DbSession
) -> KioskWithSecret:
    """Register a kiosk of a hall; its secret is in this answer only (stored encrypted)."""
    return await kiosks.register(session, identity_of(request), caller, body)


@router.get("/kiosks", tags=["hall"])
async def list_kiosks(
    caller: LiveCaller, request: Request, session: DbSession, hall_code: Annotated[HallCode | None, Query()] = None
) -> list[KioskOut]:
    return await kiosks.list_kiosks(session, identity_of(request), caller, hall_code)


@router.get("/kiosks/keys", tags=["internal"], response_model=dict[str, KioskKeysOut], responses=NO_KIOSKS)
async def kiosk_keys(request: Request, session: DbSession) -> dict:
    """Every active kiosk's secret, for the gateway only (signed with its service key; the
    gateway's route table denies this path from outside)."""
    return await kiosks.export_keys(session, identity_of(request), request)


@router.post("/kiosks/{device_id}/secret", tags=["hall"], responses=NO_KIOSKS)
async def rotate_kiosk_secret(
    device_id: Annotated[DeviceId, Path()], caller: LiveCaller, request: Request, session: DbSession
) -> KioskWithSecret:
    """A new secret replaces the kiosk's old one at once (shown in this answer only)."""
    return await kiosks.rotate(session, identity_of(request), caller, device_id)


@router.post("/kiosks/{device_id}/revoke", tags=["hall"])
async def revoke_kiosk(
    device_id: Annotated[DeviceId, Path()], caller: LiveCaller, request: Request, session: DbSession
) -> KioskOut:
    """The kiosk's signatures (and so its tokens) are refused at once."""
    return await kiosks.revoke(session, identity_of(request), caller, device_id)


@router.post("/enterprises", status_code=201, tags=["enterprises"])
async def register_enterprise(
    body: RegisterEnterprise, caller: LiveCaller, request: Request, session: DbSession
) -> EnterpriseOut:
    """Bind an enterprise: only the legal representative the enterprise registry records (at L2)
    can; a revoked or cancelled enterprise cannot be bound; the registered name is kept."""
    enterprise = await registration.register_enterprise(session, identity_of(request), caller, body)
    return EnterpriseOut(
        uscc=enterprise.uscc,
        name=enterprise.name,
        legal_representative=mask_id_number(enterprise.legal_representative),
        role="legal_representative",
    )


@router.post("/enterprises/{uscc}/agents", status_code=201, tags=["enterprises"])
async def grant_mandate(uscc: UsccPath, body: GrantMandate, caller: LiveCaller, session: DbSession) -> MandateOut:
    return agents.mandate_out(await agents.grant(session, caller, uscc, body))


@router.get("/enterprises/{uscc}/agents", tags=["enterprises"])
async def list_mandates(uscc: UsccPath, caller: LiveCaller, session: DbSession) -> list[MandateOut]:
    return [agents.mandate_out(m) for m in await agents.list_for_enterprise(session, caller, uscc)]


@router.delete("/enterprises/{uscc}/agents/{mandate_id}", status_code=204, tags=["enterprises"])
async def revoke_mandate(
    uscc: UsccPath, mandate_id: uuid.UUID, caller: LiveCaller, request: Request, session: DbSession
) -> Response:
    """Revoke a mandate: the agent's act-as tokens for this enterprise are revoked everywhere."""
    await agents.revoke(session, identity_of(request), caller, uscc, str(mandate_id))
    return Response(status_code=204)


@router.post("/officers", status_code=201, tags=["officers"])
async def create_officer(body: CreateOfficer, caller: LiveCaller, request: Request, session: DbSession) -> OfficerOut:
    """Create an officer within the caller's bounds (services/identity/domain/rights.py)."""
    return officers.officer_out(await officers.create_by(session, identity_of(request), caller, body))


@router.patch("/officers/{login}", tags=["officers"])
async def change_officer(
    login: OfficerLoginPath, body: ChangeOfficer, caller: LiveCaller, request: Request, session: DbSession
) -> OfficerOut:
    """Change an officer's name, department or roles within the caller's bounds; a change of roles
    or department ends the officer's sessions and revokes their tokens."""
    return officers.officer_out(await officers.change_by(session, identity_of(request), caller, login, body))


@router.delete("/officers/{login}", tags=["officers"])
async def disable_officer(
    login: OfficerLoginPath, caller: LiveCaller, request: Request, session: DbSession
) -> OfficerOut:
    """Disable an officer (kept for the record): no more logins, live tokens revoked."""
    return officers.officer_out(await officers.disable_by(session, identity_of(request), caller, login))


@router.get("/.well-known/jwks.json", tags=["keys"])
async def jwks(request: Request) -> dict:
    return await identity_of(request).keyring.published_jwks()


def sandbox_router(*, sms: bool, enterprises: bool) -> APIRouter:
    """Sandbox pages, mounted only when ``settings.sandbox`` is true (never in a deployment), and
    each only while its adapter is the sandbox one: what the SMS sandbox 'sent' to a mobile,
    newest first; the seeded enterprise register."""
    sandbox = APIRouter(tags=["sandbox"])
    if sms:

        @sandbox.get("/sandbox/sms")
        async def sandbox_sms(mobile: Annotated[Mobile, Query()], request: Request) -> list[dict]:
            adapter = identity_of(request).adapters.sms
            assert isinstance(adapter, SandboxSms)
            return adapter.sent_to(mobile)[:20]

    if enterprises:

        @sandbox.get("/sandbox/enterprises")
        async def sandbox_enterprises(request: Request) -> list[dict]:
            adapter = identity_of(request).adapters.enterprises
            assert isinstance(adapter, SandboxEnterpriseRegistry)
            # Full numbers: the seeded representatives are published test vectors, and someone
            # trying the sandbox needs to know whom to register as to bind a company.
            return [
                {"uscc": r.uscc, "name": r.name, "legal_representative": r.legal_representative, "status": r.status}
                for r in adapter.records.values()
            ]

    return sandbox


__all__ = ["router", "sandbox_router", "Principal", "Problem"]
