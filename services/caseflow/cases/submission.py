"""Submitting a case: who may apply, the form and materials against the pinned matter version,
the applicant's name from the verified token, and the Idempotency-Key that makes a retry safe."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import caseflow as contract
from kit.auth import Principal
from kit.errors import Problem, field_problem
from kit.events import envelope
from kit.text import text_problem
from services.caseflow import calendars, notifications, steps
from services.caseflow.adapters.licences import CheckedLicence
from services.caseflow.cases import fees, instant, licences
from services.caseflow.cases.channels import Channel, check_channel
from services.caseflow.cases.common import Context, base_fields, dumps, set_clocks
from services.caseflow.domain import access
from services.caseflow.domain.application import GivenMaterial, check_applicant, material_errors, offers_ems
from services.caseflow.domain.bundles import bundle_matter
from services.caseflow.domain.case_number import make_case_number, make_query_code
from services.caseflow.domain.form import FormInvalid, check_form
from services.caseflow.matters import get_bundle, get_matter
from services.caseflow.models import Blob, Case, CaseEvent, CaseFees
from services.caseflow.schemas import MaterialIn, SubmitRequest

# Built once, executed with parameters: SQLAlchemy compiles it once and caches it. On PostgreSQL
# the ids are one array parameter: an expanding IN is re-rendered on every call (each id's cast
# compiled anew, measured at 5% of a submission's CPU).
_BLOBS = Blob.__table__
BLOB_OWNERS = select(_BLOBS.c.id, _BLOBS.c.owner).where(_BLOBS.c.id.in_(bindparam("ids", expanding=True)))
BLOB_OWNERS_PG = select(_BLOBS.c.id, _BLOBS.c.owner).where(
    _BLOBS.c.id == any_(bindparam("ids", type_=postgresql.ARRAY(_BLOBS.c.id.type)))
)


def _single(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else "<not a single value>"


def request_hash(body: SubmitRequest) -> str:
    """The submission's fingerprint (a retry must send the same). Form values that are not single
    values (refused later, with a problem) are not serialised: JSON nested thousands deep would
    exceed pydantic's depth. surrogatepass: a lone surrogate is refused later, too, not here."""
    data = body.model_dump(mode="json", exclude={"form"})
    data["form"] = {key: _single(value) for key, value in body.form.items()}
    return hashlib.sha256(dumps(data).encode("utf-8", "surrogatepass")).hexdigest()


def _claimed_name(value: Any) -> str | None:
    """A name claim as caseflow stores and shows it: safe one-line text, or nothing."""
    if not isinstance(value, str) or not value.strip() or text_problem(value, multiline=False) is not None:
        return None
    return value.strip()[:200]


def verified_names(principal: Principal) -> tuple[str | None, str | None]:
    """(applicant's name, agent's name) from the verified token (ADR 0002's amendment): ``name`` is
    the subject's (a person's registry-confirmed name, an enterprise's registered name), ``act.name``
    the acting person's. A token without them (issued before names) gives None — never a body's name."""
    claims = principal.claims or {}
    act = claims.get("act")
    agent = _claimed_name(act.get("name")) if isinstance(act, dict) and principal.actor else None
    return _claimed_name(claims.get("name")), agent


def actor_of(principal: Principal) -> str:
    return principal.subject if principal.kind == "officer" else "applicant"


def _blob_owners(session: AsyncSession) -> Any:
    return BLOB_OWNERS_PG if session.bind.dialect.name == "postgresql" else BLOB_OWNERS


async def own_blobs(session: AsyncSession, principal: Principal, materials: list[MaterialIn]) -> set[str]:
    """The referenced uploads that are the caller's own."""
    ids = [m.blob_id for m in materials if m.blob_id is not None]
    if not ids:
        return set()
    return {
        blob
        for blob, owner in (await session.execute(_blob_owners(session), {"ids": ids})).all()
        if owner == principal.subject
    }


def stored_materials(matter: dict[str, Any], materials: list[MaterialIn],
                     checked: dict[int, CheckedLicence] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The materials as the case keeps them (checked before); a licence material as the licence
    service confirmed it (``checked``, by index), a reference only, never a copy of its data."""
    known = {m["name"]: m for m in matter.get("materials", [])}
    stored = []
    for index, material in enumerate(materials):
        item = material.model_dump(exclude_none=True)
        if material.licence_id is not None:
            item["licence_type"] = known[material.name].get("licence_type")
            if checked and index in checked:
                item = licences.verified_material(item, checked[index])
        stored.append(item)
    return stored


async def check_materials(
    session: AsyncSession,
    ctx: Context,
    principal: Principal,
    matter: dict[str, Any],
    materials: list[MaterialIn],
    *,
    partial: bool,
    holder: str,
    case_no: str | None,
    checked: dict[int, CheckedLicence] | None = None,
) -> list[dict[str, Any]]:
    """Validate materials against the matter; ALL problems at once (一次性告知). Returns stored form,
    the e-licences among them checked with the licence service (``checked``: asked already, outside
    the transaction; else asked here)."""
    errors = await _material_problems(session, principal, matter, materials, partial=partial)
    if errors:
        raise Problem(422, "validation", "Request is not valid", errors[0]["message"], errors=errors)
    if checked is None:
        try:
            checked = await licences.check_all(ctx.licences, licences.wanted(matter, materials), holder=holder,
                                               case_no=case_no)  # fmt: skip
        except licences.LicencesRefused as refused:
            raise refused.problem from None
    return stored_materials(matter, materials, checked)


async def _material_problems(session, principal, matter, materials, *, partial: bool) -> list[dict[str, str]]:
    return _material_errors(matter, materials, await own_blobs(session, principal, materials), partial=partial)


def _material_errors(matter: dict[str, Any], materials: list[MaterialIn], own: set[str], *,
                     partial: bool) -> list[dict[str, str]]:  # fmt: skip
    given = [GivenMaterial(m.name, m.blob_id, m.licence_id) for m in materials]
    return material_errors(matter, given, own_blobs=own, partial=partial)


async def find_by_idempotency_key(session: AsyncSession, applicant: str, key: str) -> Case | None:
    return (
        await session.execute(select(Case).where(Case.applicant == applicant, Case.idempotency_key == key))
    ).scalar_one_or_none()


async def _earlier_submission(session: AsyncSession, principal: Principal, key: str, digest: str) -> Case | None:
    """The case this Idempotency-Key already made (same body), or None; another body → 422."""
    existing = await find_by_idempotency_key(session, principal.subject, key)
    if existing is not None and not hmac.compare_digest(existing.request_hash, digest):
        raise Problem(422, "idempotency-key-reused", "Idempotency-Key reused",
                      "this Idempotency-Key was used for a different submission")  # fmt: skip
    return existing


@dataclass
class Submitted:
    """A submission's answer: the case, whether it is new, and (when new) its timeline so far."""

    case: Case
    created: bool
    timeline: list[CaseEvent] | None = None
    fees: Any = None  # the case's CaseFees when it owes fees (ADR 0026)


@dataclass
class Valid:
    definition: Any  # the matter version applied for (a bundle: its lead)
    matter: dict[str, Any]
    form: dict[str, Any]
    materials: list[dict[str, Any]]
    channel: Channel
    fees_due: list[dict[str, Any]] | None = None


async def submit(
    session: AsyncSession, ctx: Context, principal: Principal, body: SubmitRequest, idempotency_key: str
) -> Submitted:
    """Create a case, or return the one this Idempotency-Key already made.

    The common path is one insert that also claims the key (ON CONFLICT DO NOTHING): a retry is
    recognised by the conflict, so a first submission never pays for looking its key up; the case
    number it had drawn goes back to the block, so a retry consumes none."""
    digest = request_hash(body)
    try:
        valid = await _validate_submission(session, principal, body)
    except Problem:
        # A retry of a submission that was accepted before (the matter may have been retired since).
        existing = await _earlier_submission(session, principal, idempotency_key, digest)
        if existing is None:
            raise
        return Submitted(existing, created=False)

    wanted = licences.wanted(valid.matter, body.materials)
    rules = instant.rules_of(valid.matter)  # 秒批: evaluated below (its licence facts asked outside the transaction)
    if wanted or (rules and instant.licence_types(valid.matter)):
        # A retry of a submission that made its case gets it back without asking licence again.
        existing = await _earlier_submission(session, principal, idempotency_key, digest)
        if existing is not None:
            return Submitted(existing, created=False)
    today = ctx.today()
    matter = valid.matter
    division = matter.get("division_code") or ctx.settings.default_division
    sequence = await ctx.numbers.next(division, today)
    case_no = make_case_number(division, today, sequence)
    checked: dict[int, CheckedLicence] = {}
    holdings: list[instant.Holding] = []
    holdings_unavailable = False
    if wanted or (rules and instant.licence_types(matter)):
        # Nothing is written yet: end the read transaction, so no connection (and on PostgreSQL no
        # snapshot) is held while the licence service answers.
        await session.commit()
        try:
            checked = await licences.check_all(ctx.licences, wanted, holder=principal.subject, case_no=case_no)
        except licences.LicencesRefused as refused:
            release(ctx, division, today, sequence, read=refused.read)
            raise refused.problem from None
        if rules:
            holdings, holdings_unavailable = await instant.read_licences(ctx, matter, principal.subject, case_no)
    now = ctx.current_time()
    name = verified_names(principal)[0]
    case = new_case(principal, body, valid, case_no=case_no, today=today, now=now, idempotency_key=idempotency_key,
                    digest=digest, checked=checked)  # fmt: skip
    set_clocks(await calendars.load(session), case, matter, [])
    owed = fees.new_row(case, matter, valid.fees_due, now) if valid.fees_due else None
    step = first_step(case, principal, body, valid, owed, now)
    evaluation = None
    if rules:  # 秒批: the verdict on verified facts; a rule that holds approves the case as it is inserted
        evaluation = instant.evaluate_submission(matter, principal, name=name, form=valid.form, holdings=holdings,
                                                 unavailable=holdings_unavailable, today=today)  # fmt: skip
    approved = evaluation is not None and instant.approve_now(case, matter, evaluation, today)
    if approved:
        set_clocks(await calendars.load(session), case, matter, [])
    if await steps.insert_case(session, case, step) is None:
        # The key was claimed first: a retry, or a concurrent duplicate that committed first.
        release(ctx, division, today, sequence, read=bool(checked) or bool(rules and instant.licence_types(matter)))
        existing = await _earlier_submission(session, principal, idempotency_key, digest)
        if existing is None:  # ON CONFLICT waited for the claimant, which committed: not expected
            raise Problem(409, "idempotency-key-busy", "Submission in progress",
                          "a submission with this Idempotency-Key is still in progress; retry")  # fmt: skip
        return Submitted(existing, created=False)
    if owed is not None:
        owed.case_id = case.id
        session.add(owed)
    lines = [step.line]
    if evaluation is not None:  # 秒批: approved in this transaction, waiting for payment, or for officers
        lines += await instant.record(session, ctx, case, matter, evaluation, now, approved=approved)
    return Submitted(case, created=True, timeline=lines, fees=owed)


def new_case(principal: Principal, body: SubmitRequest, valid: Valid, *, case_no: str, today: date, now: datetime,
             idempotency_key: str, digest: str, checked: dict[int, CheckedLicence],
             make: Callable[..., Case] = Case) -> Case:  # fmt: skip
    """The new case as submitted (its clocks are set by the caller, from the calendar), built by
    ``make`` (a hot path's: ``case_rows.plain_case``)."""
    matter = valid.matter
    name, agent_name = verified_names(principal)
    return make(
        case_no=case_no,
        query_code=make_query_code(),
        matter_code=valid.definition.code,
        matter_version=valid.definition.version,
        matter_name=valid.definition.name,
        department=valid.definition.department,
        applicant=principal.subject,
        applicant_kind=principal.kind,
        applicant_name=name,
        agent_name=agent_name,
        contact_phone=body.contact_phone or body.delivery.phone,
        agent=principal.actor,
        state="submitted",
        version=1,
        suspended_from=None,
        correction_count=0,
        extension_days=0,
        extension_reason=None,
        reviewed=False,
        online=valid.channel.name != "counter",  # the online share counts what no counter handled
        delivery=dumps(body.delivery.model_dump(exclude_none=True)),
        form=dumps(valid.form),
        materials=dumps(stored_materials(matter, body.materials, checked) if checked else valid.materials),
        correction_items=None,
        decision_reason=None,
        fees_paid_yuan=body.fees_paid_yuan,
        received_on=today,
        resubmitted_on=None,
        accepted_on=None,
        deemed_accepted=False,
        decided_on=None,
        completed_on=None,
        idempotency_key=idempotency_key,
        request_hash=digest,
        bundle=dumps(matter["bundle"]) if "bundle" in matter else None,
        origin="platform",
        department_case_id=None,
        channel=valid.channel.name,
        helped_by=valid.channel.helped_by,
        helper_name=valid.channel.helper_name,
        fees_status="due" if valid.fees_due else None,
        created_at=now,
        updated_at=now,
    )


def first_step(case: Case, principal: Principal, body: SubmitRequest, valid: Valid, owed: CaseFees | None,
               now: datetime) -> steps.Step:  # fmt: skip
    """The submission's timeline line, message and events (with CaseFeesDue when it owes fees)."""
    submitted = contract.CaseSubmitted(
        **base_fields(case, "applicant", now), applicant=case.applicant, delivery=body.delivery.method,
        received_on=case.received_on, bundle_code=body.bundle_code, channel=valid.channel.name,
        helped_by=valid.channel.helped_by,
    )  # fmt: skip
    events = [envelope(submitted, subject=case.case_no)]
    if owed is not None:  # CaseFeesDue revision 1, in the submission's own statement
        events.append(envelope(fees.fees_due_event(case, owed, "applicant", now), subject=case.case_no))
    return steps.Step(
        steps.line(case, now, "submit", actor_of(principal), None, "submitted",
                   dumps({"materials": len(valid.materials), **valid.channel.line_detail()})),
        message=notifications.message(case, "submit", {}, now),
        events=events,
    )  # fmt: skip


def release(ctx: Context, division: str, today: Any, sequence: int, *, read: bool) -> None:
    """A drawn number the submission did not use goes back to be handed out next — unless the
    licence service may have logged a read of the applicant's licence under it: the holder's access
    log must never name a case number that becomes someone else's case, so that one is a gap."""
    if not read:
        ctx.numbers.give_back(division, today, sequence)


async def _bundle_of(session: AsyncSession, code: str) -> tuple[Any, dict[str, Any]]:
    """The bundle's lead matter version and the bundle matter (current version of each member)."""
    bundle = await get_bundle(session, code)
    if bundle is None:
        raise field_problem("bundle_code", "published", "no published bundle with this code", status=422)
    members = [await get_matter(session, member) for member in bundle["matter_codes"]]
    missing = [c for c, m in zip(bundle["matter_codes"], members, strict=True) if m is None]
    if missing:
        raise field_problem("bundle_code", "published", f"matters of this bundle are not published: {', '.join(missing)}",
                            status=422)  # fmt: skip
    return members[0], bundle_matter(bundle, [m.definition for m in members if m is not None])


async def _validate_submission(session: AsyncSession, principal: Principal, body: SubmitRequest) -> Valid:
    """The matter version applied for (for a bundle: its lead, widened to the whole bundle), the
    form and materials as stored, or a problem naming every rule broken."""
    if body.bundle_code is not None:
        definition, matter = await _bundle_of(session, body.bundle_code)
        codes = [matter["code"], body.bundle_code]
    else:
        assert body.matter_code is not None  # the schema requires one of the two
        found = await get_matter(session, body.matter_code, body.matter_version)
        if found is None:
            raise field_problem("matter_code", "published", "no published matter with this code and version",
                                status=422)  # fmt: skip
        definition, matter, codes = found, found.definition, [found.definition["code"]]
    return valid_submission(principal, body, definition, matter, codes,
                            own=await own_blobs(session, principal, body.materials))  # fmt: skip


def valid_submission(principal: Principal, body: SubmitRequest, definition: Any, matter: dict[str, Any],
                     codes: list[str], *, own: set[str]) -> Valid:  # fmt: skip
    """The submission checked against the matter applied for (``codes``: its code, a bundle's too)
    and the caller's own uploads among those it references (``own``)."""
    access.require(principal, "case.submit", matter_codes=codes)
    channel = check_channel(principal, matter)
    check_applicant(kind=principal.kind, level=principal.level, matter=matter)
    fees_due = fees.due_at_submission(matter)
    if body.delivery.method == "ems" and not offers_ems(matter):
        raise field_problem("delivery.method", "offered", "this matter does not offer EMS delivery")
    errors: list[dict[str, str]] = []
    form: dict[str, Any] = {}
    try:
        form = check_form(matter.get("form_fields", []), body.form, verified_name=verified_names(principal)[0])
    except FormInvalid as invalid:
        errors.extend(invalid.errors)
    errors.extend(_material_errors(matter, body.materials, own, partial=False))
    if errors:  # the form's and the materials' problems in one notice
        raise Problem(422, "validation", "Request is not valid", errors[0]["message"], errors=errors)
    return Valid(definition, matter, form, stored_materials(matter, body.materials), channel, fees_due)
