"""Cases: submit, act, read. The rules live in domain/; this module is the I/O around them."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError

from contracts.events import caseflow as contract
from kit.auth import Principal
from kit.errors import Problem, field_problem
from kit.events import envelope
from kit.masking import mask_name
from services.caseflow import calendars, notifications, steps
from services.caseflow.case_numbers import CaseNumberBlocks
from services.caseflow.domain import states
from services.caseflow.domain.bundles import bundle_matter
from services.caseflow.domain.calendar import WorkdayCalendar
from services.caseflow.domain.case_clock import (
    STEP_OF_STATE,
    case_deadlines,
    deadline_json,
    extension_limit,
)
from services.caseflow.domain.case_number import make_case_number, make_query_code, valid_case_number
from services.caseflow.domain.clock import Pause
from services.caseflow.matters import get_bundle, get_matter
from services.caseflow.models import (
    OPEN_CASES,
    Blob,
    Case,
    CaseBranch,
    CaseEvent,
    CasePause,
    Evaluation,
    SupervisionWarning,
    outbox,
)
from services.caseflow.schemas import ActionRequest, MaterialIn, ResubmitRequest, SubmitRequest
from services.caseflow.settings import Settings

SOURCE = "yiwang.caseflow"
ANOMALY_TEXT = {
    "decision_without_review": "{action} by {actor} without a review",
    "fee_mismatch": "{action} by {actor}: fees paid differ from the matter's fees",
}
# Officers of these departments see every department's cases (supervision centre, platform admin).
ALL_DEPARTMENTS = frozenset({"ADMIN", "SUPERVISION", "JCZX"})  # JCZX: 监察中心 (identity demo)

# Built once, executed with parameters: SQLAlchemy compiles it once and caches it.
BLOB_OWNERS = select(Blob.__table__.c.id, Blob.__table__.c.owner).where(
    Blob.__table__.c.id.in_(bindparam("ids", expanding=True))
)


@dataclass
class Context:
    """What the service functions need besides the session: settings, the case-number blocks of this
    process, and the current time."""

    settings: Settings
    numbers: CaseNumberBlocks = field(repr=False)
    now: Any = None  # callable returning an aware datetime; tests replace it

    def current_time(self) -> datetime:
        return self.now() if self.now is not None else datetime.now(UTC)

    def today(self) -> date:
        return self.current_time().astimezone(ZoneInfo(self.settings.timezone)).date()


class SecondCorrectionRefused(Exception):
    """Raised after the refusal was decided; the route records the anomaly in its own transaction."""

    def __init__(self, case_id: int, case_no: str, department: str) -> None:
        self.case_id, self.case_no, self.department = case_id, case_no, department


# ---- helpers ------------------------------------------------------------------------------------
def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def request_hash(body: SubmitRequest) -> str:
    return hashlib.sha256(dumps(body.model_dump(mode="json")).encode()).hexdigest()


def _insert(session: AsyncSession):
    return pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


def actor_of(principal: Principal) -> str:
    return principal.subject if principal.kind == "officer" else "applicant"


def can_see_all(principal: Principal) -> bool:
    return principal.kind == "officer" and principal.department in ALL_DEPARTMENTS


def _approved_on(case: Case) -> date | None:
    return case.decided_on if case.state in {"approved", "delivering", "completed"} else None


def set_clocks(calendar: WorkdayCalendar, case: Case, matter: dict, pauses: list[CasePause]) -> None:
    """Recompute every clock of the case from its facts and pauses; store the running one."""
    clocks = case_deadlines(
        calendar,
        matter=matter,
        state=case.state,
        received_on=case.received_on,
        resubmitted_on=case.resubmitted_on,
        accepted_on=case.accepted_on,
        approved_on=_approved_on(case),
        pauses=[Pause(start=p.started_on, end=p.ended_on, reason=p.reason) for p in pauses],
        extension_days=case.extension_days,
    )
    step = STEP_OF_STATE.get(case.state)
    running = clocks.get(step) if step else None
    case.clock_step = step if running is not None else None
    case.due_on = running.due if running else None
    case.due_provisional = any(d.provisional for d in clocks.values())
    case.deadlines = dumps({name: deadline_json(d) for name, d in clocks.items()})


async def recompute_clocks(session: AsyncSession, calendar: WorkdayCalendar, case: Case, matter: dict) -> None:
    """``set_clocks`` with the case's pauses (loaded if they are not yet)."""
    set_clocks(calendar, case, matter, list(await case.awaitable_attrs.pauses))


async def add_event(session: AsyncSession, case: Case, data: Any) -> None:
    await outbox.add(session, envelope(data, source=SOURCE, subject=case.case_no))


def base_fields(case: Case, actor: str, at: datetime) -> dict[str, Any]:
    return dict(
        case_no=case.case_no,
        matter_code=case.matter_code,
        matter_version=case.matter_version,
        department=case.department,
        state=case.state,
        at=at,
        actor=actor,
    )


async def record_anomaly(session: AsyncSession, *, case_id: int, case_no: str, department: str, step: str,
                         detail: str, at: datetime) -> bool:  # fmt: skip
    """Write a process anomaly to the supervision ledger once per case and kind; emit it if new."""
    insert = _insert(session)
    result = await session.execute(
        insert(SupervisionWarning)
        .values(
            case_id=case_id,
            case_no=case_no,
            department=department,
            step=step,
            level="anomaly",
            due_on=None,
            raised_at=at,
            detail=detail,
        )  # fmt: skip
        .on_conflict_do_nothing()
    )
    if result.rowcount:
        event = contract.SupervisionWarning(
            case_no=case_no, department=department, step=step, level="anomaly", due=None, raised_at=at
        )
        await outbox.add(session, envelope(event, source=SOURCE, subject=case_no))
        return True
    return False


# ---- submission ---------------------------------------------------------------------------------
def check_mandate(principal: Principal, matter_code: str) -> None:
    """An agent (a token with ``act``) acts only within its mandate's scope for this matter."""
    if principal.actor is not None and not {"*", "caseflow", f"caseflow:{matter_code}"} & set(principal.scopes):
        raise Problem(403, "forbidden", "Not allowed", f"the mandate does not cover caseflow:{matter_code}",
                      rule="mandate_scope")  # fmt: skip


def check_applicant(principal: Principal, matter: dict[str, Any]) -> None:
    """Who may apply: persons and enterprises the matter serves, agents within their mandate,
    at the matter's real-name level. Each refusal names its rule."""
    if principal.kind not in {"person", "enterprise"}:
        raise Problem(403, "forbidden", "Not allowed", "only persons and enterprises apply", rule="applicant_kind")
    if principal.kind not in matter.get("audience", ["person", "enterprise"]):
        raise Problem(
            403, "forbidden", "Not allowed", f"this matter does not serve {principal.kind} applicants", rule="audience"
        )
    check_mandate(principal, matter["code"])
    if principal.level < int(matter.get("min_level", 1)):
        raise Problem(
            403,
            "forbidden",
            "Not allowed",
            f"real-name level L{matter['min_level']} is required (you have L{principal.level})",
            rule="min_level",
        )


async def check_materials(
    session: AsyncSession, principal: Principal, matter: dict[str, Any], materials: list[MaterialIn], *, partial: bool
) -> list[dict[str, Any]]:
    """Validate materials against the matter; ALL problems at once (一次性告知). Returns stored form."""
    known = {m["name"]: m for m in matter.get("materials", [])}
    errors: list[dict[str, str]] = []
    given = {m.name for m in materials}
    blob_ids = [m.blob_id for m in materials if m.blob_id is not None]
    owners = dict((await session.execute(BLOB_OWNERS, {"ids": blob_ids})).all()) if blob_ids else {}
    for index, material in enumerate(materials):
        spec = known.get(material.name)
        field = f"materials.{index}"
        if spec is None:
            errors.append(
                {
                    "field": f"{field}.name",
                    "rule": "known_material",
                    "message": f"not a material of this matter: {material.name}",
                }
            )  # noqa: E501
            continue
        if material.licence_id is not None and not spec.get("licence_type"):
            errors.append(
                {
                    "field": f"{field}.licence_id",
                    "rule": "licence_type",
                    "message": f"{material.name} cannot be satisfied by an e-licence",
                }
            )  # noqa: E501
        if material.blob_id is not None and owners.get(material.blob_id) != principal.subject:
            errors.append({"field": f"{field}.blob_id", "rule": "exists", "message": "no such upload of yours"})
    if not partial:
        for name, spec in known.items():
            if spec.get("required") and name not in given:
                errors.append(
                    {"field": "materials", "rule": "required", "message": f"missing required material: {name}"}
                )  # noqa: E501
    if errors:
        raise Problem(422, "validation", "Request is not valid", errors[0]["message"], errors=errors)
    stored = []
    for material in materials:
        spec = known[material.name]
        item = material.model_dump(exclude_none=True)
        if material.licence_id is not None:
            # The case records the licence id and version, never a copy (asked from licence when
            # that service is reachable; until then the reference is recorded unverified).
            item["licence_type"] = spec.get("licence_type")
            item["verified"] = False
        stored.append(item)
    return stored


def check_form(matter: dict[str, Any], form: dict[str, Any]) -> None:
    errors = [
        {"field": f"form.{f['name']}", "rule": "required", "message": f"{f['label']} is required"}
        for f in matter.get("form_fields", [])
        if f.get("required") and f.get("kind") != "subject_id" and form.get(f["name"]) in (None, "")
    ]
    if errors:
        raise Problem(422, "validation", "Request is not valid", errors[0]["message"], errors=errors)


async def find_by_idempotency_key(session: AsyncSession, applicant: str, key: str) -> Case | None:
    return (
        await session.execute(select(Case).where(Case.applicant == applicant, Case.idempotency_key == key))
    ).scalar_one_or_none()


async def _earlier_submission(session: AsyncSession, principal: Principal, key: str | None, digest: str) -> Case | None:
    """The case this Idempotency-Key already made (same body), or None; another body → 422."""
    existing = await find_by_idempotency_key(session, principal.subject, key) if key is not None else None
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


async def submit(
    session: AsyncSession, ctx: Context, principal: Principal, body: SubmitRequest, idempotency_key: str | None
) -> Submitted:
    """Create a case, or return the one this Idempotency-Key already made.

    The common path is one insert that also claims the key (ON CONFLICT DO NOTHING): a retry is
    recognised by the conflict, so a first submission never pays for looking its key up."""
    digest = request_hash(body)
    try:
        matter_row, matter, materials = await _validate_submission(session, principal, body)
    except Problem:
        # A retry of a submission that was accepted before (the matter may have been retired since).
        existing = await _earlier_submission(session, principal, idempotency_key, digest)
        if existing is None:
            raise
        return Submitted(existing, created=False)

    now = ctx.current_time()
    today = ctx.today()
    division = matter.get("division_code") or ctx.settings.default_division
    sequence = await ctx.numbers.next(division, today)
    case = Case(
        case_no=make_case_number(division, today, sequence),
        query_code=make_query_code(),
        matter_code=matter_row.code,
        matter_version=matter_row.version,
        matter_name=matter_row.name,
        department=matter_row.department,
        applicant=principal.subject,
        applicant_kind=principal.kind,
        applicant_name=body.applicant_name,
        contact_phone=body.contact_phone or body.delivery.phone,
        agent=principal.actor,
        state="submitted",
        version=1,
        suspended_from=None,
        correction_count=0,
        extension_days=0,
        extension_reason=None,
        reviewed=False,
        online=True,
        delivery=dumps(body.delivery.model_dump(exclude_none=True)),
        form=dumps(body.form),
        materials=dumps(materials),
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
        created_at=now,
        updated_at=now,
    )
    set_clocks(await calendars.load(session), case, matter, [])
    submitted = contract.CaseSubmitted(
        **base_fields(case, "applicant", now), applicant=case.applicant, delivery=body.delivery.method,
        received_on=today, bundle_code=body.bundle_code,
    )  # fmt: skip
    step = steps.Step(
        steps.line(case, now, "submit", actor_of(principal), None, "submitted", dumps({"materials": len(materials)})),
        message=notifications.message(case, "submit", {}, now),
        events=[envelope(submitted, source=SOURCE, subject=case.case_no)],
    )
    if await steps.insert_case(session, case, step) is None:
        # The key was claimed first: a retry, or a concurrent duplicate that committed first.
        existing = await _earlier_submission(session, principal, idempotency_key, digest)
        if existing is None:  # ON CONFLICT waited for the claimant, which committed: not expected
            raise Problem(409, "idempotency-key-busy", "Submission in progress",
                          "a submission with this Idempotency-Key is still in progress; retry")  # fmt: skip
        return Submitted(existing, created=False)
    return Submitted(case, created=True, timeline=[step.line])


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


async def matter_of_case(session: AsyncSession, case: Case) -> dict[str, Any]:
    """The matter a case runs under: its pinned version, widened to its bundle for a bundle case."""
    if case.bundle:
        pinned = json.loads(case.bundle)
        members = [await get_matter(session, m["code"], m["version"], include_retired=True) for m in pinned["matters"]]
        if all(members):
            return bundle_matter(pinned, [m.definition for m in members if m is not None])
    definition = await get_matter(session, case.matter_code, case.matter_version, include_retired=True)
    return definition.definition if definition else {}


async def _validate_submission(
    session: AsyncSession, principal: Principal, body: SubmitRequest
) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    """The matter version applied for (for a bundle: its lead, widened to the whole bundle) and the
    stored materials, or a problem naming every rule broken."""
    if body.bundle_code is not None:
        definition, matter = await _bundle_of(session, body.bundle_code)
    else:
        assert body.matter_code is not None  # the schema requires one of the two
        definition = await get_matter(session, body.matter_code, body.matter_version)
        if definition is None:
            raise field_problem("matter_code", "published", "no published matter with this code and version",
                                status=422)  # fmt: skip
        matter = definition.definition
    check_applicant(principal, matter)
    if body.delivery.method == "ems" and not (
        matter.get("express") or "express" in matter.get("result", {}).get("delivery", [])
    ):
        raise field_problem("delivery.method", "offered", "this matter does not offer EMS delivery")
    check_form(matter, body.form)
    materials = await check_materials(session, principal, matter, body.materials, partial=False)
    return definition, matter, materials


# ---- reading ------------------------------------------------------------------------------------
def not_found() -> Problem:
    return Problem(404, "not-found", "Not found", "no such case")


async def visible_case(session: AsyncSession, principal: Principal, case_no: str) -> Case:
    """The case if the caller may see it; 404 otherwise (an outsider learns nothing, not even existence)."""
    if not valid_case_number(case_no):
        raise not_found()
    query = select(Case).options(joinedload(Case.pauses), joinedload(Case.timeline)).where(Case.case_no == case_no)
    case = (await session.execute(query)).unique().scalar_one_or_none()
    if case is None:
        raise not_found()
    if principal.kind == "officer":
        if not (can_see_all(principal) or principal.department == case.department):
            branch = (
                await session.execute(
                    select(CaseBranch.id).where(
                        CaseBranch.case_id == case.id, CaseBranch.department == principal.department
                    )
                )
            ).first()
            if branch is None:
                raise not_found()
    elif case.applicant != principal.subject:
        raise not_found()
    return case


def evaluations_out(evaluation: Evaluation) -> dict[str, Any]:
    from services.caseflow.evaluations import evaluation_out  # evaluations imports this module

    return evaluation_out(evaluation)


def summary_out(case: Case) -> dict[str, Any]:
    return {
        "case_no": case.case_no,
        "matter": {"code": case.matter_code, "version": case.matter_version, "name": case.matter_name},
        "department": case.department,
        "state": case.state,
        "version": case.version,
        "received_on": case.received_on.isoformat(),
        "clock_step": case.clock_step,
        "due_on": case.due_on.isoformat() if case.due_on else None,
        "due_provisional": case.due_provisional,
        "updated_at": case.updated_at.isoformat(),
    }


async def detail_out(session: AsyncSession, case: Case, principal: Principal, *, with_query_code: bool = False) -> dict:
    """The case with everything an applicant or officer sees: pauses, timeline, branches, evaluation."""
    from services.caseflow.branches import branches_of

    parallel = bool((await matter_of_case(session, case)).get("parallel_departments"))
    return detail_of(
        case,
        principal,
        pauses=list(await case.awaitable_attrs.pauses),
        timeline=list(await case.awaitable_attrs.timeline),
        branches=await branches_of(session, case.id) if parallel else [],
        evaluation=await session.get(Evaluation, case.id) if case.state == "completed" else None,
        with_query_code=with_query_code,
    )


def detail_of(
    case: Case,
    principal: Principal,
    *,
    pauses: list[CasePause],
    timeline: list[CaseEvent],
    branches: list[CaseBranch],
    evaluation: Evaluation | None,
    with_query_code: bool,
) -> dict[str, Any]:
    from services.caseflow.branches import branch_out

    out = summary_out(case)
    roles = principal.roles if principal.kind == "officer" else ("applicant",)
    out.update(
        applicant={
            "subject": case.applicant,
            "kind": case.applicant_kind,
            "name": case.applicant_name,
            "agent": case.agent,
        },  # fmt: skip
        form=json.loads(case.form),
        materials=json.loads(case.materials),
        delivery=json.loads(case.delivery),
        correction_items=json.loads(case.correction_items) if case.correction_items else None,
        decision_reason=case.decision_reason,
        accepted_on=case.accepted_on.isoformat() if case.accepted_on else None,
        deemed_accepted=case.deemed_accepted,
        decided_on=case.decided_on.isoformat() if case.decided_on else None,
        completed_on=case.completed_on.isoformat() if case.completed_on else None,
        extension={"days": case.extension_days, "reason": case.extension_reason} if case.extension_days else None,
        pauses=[
            {
                "reason": p.reason,
                "started_on": p.started_on.isoformat(),
                "ended_on": p.ended_on.isoformat() if p.ended_on else None,
                "expected_days": p.expected_days,
                "note": p.note,
            }  # fmt: skip
            for p in pauses
        ],
        deadlines=json.loads(case.deadlines),
        timeline=[
            {
                "at": e.at.isoformat(),
                "action": e.action,
                "actor": e.actor,
                "from_state": e.from_state,
                "to_state": e.to_state,
                "detail": json.loads(e.detail),
            }  # fmt: skip
            for e in timeline
        ],
        allowed_actions=[a for a in states.allowed_actions(case.state, roles) if a != "deem_accept"],
        branches=[branch_out(b) for b in branches],
        evaluation=evaluations_out(evaluation) if evaluation else None,
    )
    if with_query_code:
        out["query_code"] = case.query_code
    return out


async def progress(session: AsyncSession, case_no: str, code: str) -> dict[str, Any]:
    """Public progress (J7): case number plus query code; no personal data beyond a masked name."""
    case = None
    if valid_case_number(case_no):
        query = select(Case).options(joinedload(Case.timeline)).where(Case.case_no == case_no)
        case = (await session.execute(query)).unique().scalar_one_or_none()
    if case is None or not hmac.compare_digest(case.query_code.encode(), code.upper().encode()):
        raise not_found()
    return {
        "case_no": case.case_no,
        "matter": case.matter_name,
        "department": case.department,
        "applicant": mask_name(case.applicant_name) if case.applicant_name else None,
        "state": case.state,
        "received_on": case.received_on.isoformat(),
        "due_on": case.due_on.isoformat() if case.due_on else None,
        "steps": [{"at": e.at.isoformat(), "action": e.action, "to_state": e.to_state} for e in case.timeline],
    }


async def my_cases(session: AsyncSession, principal: Principal, *, state: str | None, page: int, page_size: int):
    query = select(Case).where(Case.applicant == principal.subject)
    if state:
        query = query.where(Case.state == state)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (
        await session.execute(query.order_by(Case.id.desc()).offset((page - 1) * page_size).limit(page_size))
    ).scalars()
    return {"total": total, "page": page, "page_size": page_size, "items": [summary_out(c) for c in rows]}


# States each role works on (the worklist).
WORKLIST_COUNT_CAP = 1000
WORK_OF_ROLE = {
    "acceptor": ("submitted", "resubmitted", "approved", "delivering"),
    "reviewer": ("accepted", "suspended"),
    "decider": ("accepted", "reviewed", "suspended"),
    "supervisor": tuple(s for s in states.STATES if s not in states.TERMINAL),
    "admin": tuple(s for s in states.STATES if s not in states.TERMINAL),
}


async def worklist(
    session: AsyncSession,
    principal: Principal,
    *,
    state: str | None,
    matter_code: str | None,
    overdue_on: date | None,
    due_before: date | None,
    page: int,
    page_size: int,
) -> dict[str, Any]:
    """The officer's department's cases their roles act on, nearest deadline first."""
    if principal.kind != "officer" or not principal.department:
        raise Problem(403, "forbidden", "Not allowed", "the worklist is for officers")
    wanted = sorted({s for role in principal.roles for s in WORK_OF_ROLE.get(role, ())})
    if state:
        wanted = [s for s in wanted if s == state]
    # The literal open-cases predicate lets both databases use the partial worklist index.
    query = select(Case).where(text(OPEN_CASES), Case.state.in_(wanted))
    if not can_see_all(principal):
        own = Case.department == principal.department
        if "decider" in principal.roles:  # and the parallel branches waiting for this department
            branch_cases = select(CaseBranch.case_id).where(
                CaseBranch.department == principal.department, CaseBranch.state == "pending"
            )
            own = or_(own, Case.id.in_(branch_cases))
        query = query.where(own)
    if matter_code:
        query = query.where(Case.matter_code == matter_code)
    if overdue_on:
        query = query.where(Case.due_on < overdue_on)
    if due_before:
        query = query.where(Case.due_on <= due_before)
    # Counting a department's whole backlog on every page costs more than the page; past
    # WORKLIST_COUNT_CAP the total is reported as that cap with "total_capped": true.
    capped = query.with_only_columns(Case.id).limit(WORKLIST_COUNT_CAP + 1).subquery()
    total = (await session.execute(select(func.count()).select_from(capped))).scalar_one()
    ordered = query.order_by(Case.due_on.asc().nulls_last(), Case.id)
    rows = (await session.execute(ordered.offset((page - 1) * page_size).limit(page_size))).scalars()
    return {
        "total": min(total, WORKLIST_COUNT_CAP),
        "total_capped": total > WORKLIST_COUNT_CAP,
        "page": page,
        "page_size": page_size,
        "items": [summary_out(c) for c in rows],
    }


# ---- transitions --------------------------------------------------------------------------------
def parse_version(if_match: str | None, *, required: bool) -> int | None:
    if if_match is None:
        if required:
            raise Problem(428, "precondition-required", "If-Match required", "send If-Match: <case version>")
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise field_problem("If-Match", "integer", "the case version is an integer")
    return int(value)


def _refusal(exc: states.TransitionError, case: Case) -> Problem:
    if isinstance(exc, states.RoleNotAllowed):
        return Problem(403, "role-not-allowed", "Not allowed", str(exc), rule="role", state=case.state)
    if isinstance(exc, states.AlreadyExtended):
        return Problem(409, "already-extended", "Already extended", str(exc), state=case.state)
    return Problem(409, "illegal-transition", "Not possible in this state", str(exc), state=case.state)


def _require(value: Any, field: str, message: str) -> None:
    if not value:
        raise field_problem(field, "required", message)


def _open_pause(case: Case, *, correction: bool) -> CasePause | None:
    """The correction pause (or the Art. 45 suspension) still running; pauses are loaded."""
    return next((p for p in case.pauses if p.ended_on is None and (p.reason == "correction") == correction), None)


async def apply_action(session: AsyncSession, ctx: Context, case: Case, **kwargs: Any) -> Case:
    """Move the case by one action (see ``_apply_action``); a concurrent winner gives 409."""
    old_state = case.state
    try:
        return await _apply_action(session, ctx, case, **kwargs)
    except StaleDataError as exc:  # UPDATE … WHERE version = :loaded matched nothing
        raise Problem(409, "version-conflict", "The case changed", "another action changed the case first",
                      state=old_state) from exc  # fmt: skip


async def _apply_action(
    session: AsyncSession,
    ctx: Context,
    case: Case,
    *,
    action: str,
    roles: tuple[str, ...],
    actor: str,
    expected_version: int | None,
    body: ActionRequest | ResubmitRequest | None = None,
    principal: Principal | None = None,
    system_detail: dict[str, Any] | None = None,
) -> Case:
    """Move the case by one action: guard, effects, clocks, timeline and event, in the caller's
    transaction. A stale ``expected_version`` (or a concurrent winner) gives 409."""
    if expected_version is not None and case.version != expected_version:
        raise Problem(
            409,
            "version-conflict",
            "The case changed",
            f"the case is at version {case.version}, not {expected_version}",
            state=case.state,
            version=case.version,
        )
    matter = await matter_of_case(session, case)
    await case.awaitable_attrs.pauses  # loaded before any change (no lazy load half-way)
    try:
        new_state = states.transition(
            case.state,
            action,
            roles,
            instant=matter.get("kind") == "instant",
            suspended_from=case.suspended_from,
            corrections=case.correction_count,
            extended=case.extension_days > 0,
        )
    except states.SecondCorrection as exc:
        raise SecondCorrectionRefused(case.id, case.case_no, case.department) from exc
    except states.TransitionError as exc:
        raise _refusal(exc, case) from exc
    from services.caseflow import branches  # branches builds on this module

    if action == "approve":
        pending = await branches.pending_departments(session, case.id)
        if pending:
            raise Problem(409, "branches-pending", "Parallel branches pending",
                          f"waiting for the decisions of {', '.join(pending)}", state=case.state, pending=pending)  # fmt: skip

    # One UPDATE of the case row, at the flush below: no autoflush half-way (each would bump the version).
    with session.no_autoflush:
        now = ctx.current_time()
        today = ctx.today()
        old_state = case.state
        detail: dict[str, Any] = dict(system_detail or {})
        events: list[Any] = []
        fields = lambda: base_fields(case, actor, now)  # noqa: E731 - read after the state changes
        anomaly: str | None = None
        reason = getattr(body, "reason", None)

        if action in {"reject", "deny"}:
            _require(reason, "reason", f"{'a rejection' if action == 'reject' else 'a denial'} states its reasons")
            case.decision_reason = reason
            detail["reason"] = reason
        if action == "request_correction":
            items = body.items if isinstance(body, ActionRequest) else None
            _require(items, "items", "list ALL missing or faulty materials in this one notice")
            known = {m["name"] for m in matter.get("materials", [])} | {"form"}
            unknown = [i.material for i in items if i.material not in known and not i.material.startswith("form.")]
            if unknown:
                raise field_problem("items", "known_material", f"not materials of this matter: {', '.join(unknown)}")
            case.correction_count += 1
            case.correction_items = dumps([i.model_dump() for i in items])
            case.pauses.append(CasePause(case_id=case.id, reason="correction", started_on=today))
            detail["items"] = [i.model_dump() for i in items]
        elif action == "resubmit":
            pause = _open_pause(case, correction=True)
            if pause is not None:
                pause.ended_on = today
            case.resubmitted_on = today
            if isinstance(body, ResubmitRequest):
                form = json.loads(case.form)
                form.update(body.form)
                case.form = dumps(form)
                if body.materials and principal is not None:
                    replaced = await check_materials(session, principal, matter, body.materials, partial=True)
                    names = {m["name"] for m in replaced}
                    case.materials = dumps([m for m in json.loads(case.materials) if m["name"] not in names] + replaced)
                detail["changed"] = sorted(body.form) + [m.name for m in body.materials]
        elif action in {"accept", "deem_accept"}:
            if action == "deem_accept":
                case.accepted_on = case.resubmitted_on or case.received_on  # Art. 32: as of receipt
                case.deemed_accepted = True
            else:
                case.accepted_on = today
            if new_state == "approved":  # instant matter
                case.decided_on = today
        elif action == "review":
            case.reviewed = True
        elif action in {"approve", "deny"}:
            case.decided_on = today
            running = json.loads(case.deadlines).get("decision")
            detail["decision_due"] = running["due"] if running else None  # for the on-time rate
            has_review_step = any("reviewer" in s.get("roles", []) for s in matter.get("steps", []))
            if not case.reviewed and has_review_step:
                anomaly = "decision_without_review"
            elif action == "approve" and fee_mismatch(matter, case.fees_paid_yuan):
                anomaly = "fee_mismatch"
        elif action == "suspend":
            suspension = body.suspension if isinstance(body, ActionRequest) else None
            expected = body.expected_days if isinstance(body, ActionRequest) else None
            _require(suspension, "suspension", "name the Art. 45 procedure (hearing, testing, expert_review, …)")
            _require(expected, "expected_days", "the applicant is told how long it will take (working days)")
            case.suspended_from = old_state
            case.pauses.append(CasePause(case_id=case.id, reason=suspension, started_on=today,
                                         expected_days=expected, note=reason))  # fmt: skip
            detail.update(suspension=suspension, expected_days=expected, reason=reason)
        elif action == "resume":
            pause = _open_pause(case, correction=False)
            if pause is not None:
                pause.ended_on = today
            case.suspended_from = None
        elif action == "extend":
            _require(reason, "reason", "the applicant is told the reason for the extension (Art. 42)")
            case.extension_days = extension_limit(matter)
            case.extension_reason = reason
            detail.update(days=case.extension_days, reason=reason, approved_by=actor)
        elif action == "complete":
            case.completed_on = today
        elif action == "withdraw":
            for pause in case.pauses:
                if pause.ended_on is None:
                    pause.ended_on = today

        case.state = new_state
        case.updated_at = now
        await recompute_clocks(session, await calendars.load(session), case, matter)
    if action in {"accept", "deem_accept"} and new_state == "accepted" and matter.get("parallel_departments"):
        made = branches.fan_out(session, await calendars.load(session), case, matter, case.accepted_on)
        detail["branches"] = [b.department for b in made]
    if action == "withdraw":
        for branch in await branches.branches_of(session, case.id):
            if branch.state == "pending":
                branch.state = "cancelled"
    deadlines = json.loads(case.deadlines)
    if action == "extend" and "decision" in deadlines:
        detail["new_due"] = deadlines["decision"]["due"]

    if action == "submit":  # pragma: no cover - submission has its own path
        pass
    elif action in {"accept", "deem_accept"}:
        events.append(contract.CaseAccepted(**fields(), accepted_on=case.accepted_on, deemed=case.deemed_accepted))
        if new_state == "approved":
            events.append(_approved(case, fields(), matter))
    elif action == "reject":
        events.append(contract.CaseRejected(**fields(), reason=reason))
    elif action == "request_correction":
        events.append(contract.CaseCorrectionRequested(**fields(), items=detail["items"]))
    elif action == "resubmit":
        events.append(contract.CaseResubmitted(**fields()))
    elif action == "review":
        events.append(contract.CaseReviewed(**fields()))
    elif action == "approve":
        events.append(_approved(case, fields(), matter))
    elif action == "deny":
        events.append(contract.CaseDenied(**fields(), reason=reason))
    elif action == "suspend":
        events.append(
            contract.CaseSuspended(**fields(), reason=detail["suspension"], expected_days=detail["expected_days"])
        )
    elif action == "resume":
        events.append(contract.CaseResumed(**fields()))
    elif action == "extend":
        due = detail.get("new_due")
        events.append(contract.CaseExtended(**fields(), days=case.extension_days, reason=reason,
                                            new_due=date.fromisoformat(due) if due else None))  # fmt: skip
    elif action == "deliver":
        delivery = json.loads(case.delivery)
        if delivery.get("method") == "ems":
            due = deadlines.get("delivery", {}).get("due")
            events.append(
                contract.CaseDeliveryRequested(
                    **fields(),
                    applicant=case.applicant,
                    recipient=delivery["recipient"],
                    phone=delivery["phone"],
                    address=delivery["address"],
                    due=date.fromisoformat(due) if due else None,
                )  # fmt: skip
            )
    elif action == "complete":
        events.append(contract.CaseCompleted(**fields()))
    elif action == "withdraw":
        events.append(contract.CaseWithdrawn(**fields()))
    step = steps.Step(
        steps.line(case, now, action, actor, old_state, new_state, dumps(detail)),
        message=notifications.message(case, action, detail, now),
        events=[envelope(data, source=SOURCE, subject=case.case_no) for data in events],
    )
    await steps.move(session, case, step)  # UPDATE … WHERE version = :loaded: a concurrent winner → 409
    if anomaly:
        await record_anomaly(session, case_id=case.id, case_no=case.case_no, department=case.department,
                             step=anomaly, detail=ANOMALY_TEXT[anomaly].format(action=action, actor=actor), at=now)  # fmt: skip
    return case


def fee_mismatch(matter: dict[str, Any], paid: str | None) -> bool:
    """电子监察 fee anomaly: what was paid differs from the fees the matter's guide lists."""
    due = sum((Decimal(fee["amount_yuan"]) for fee in matter.get("fees", [])), Decimal(0))
    return Decimal(paid or 0) != due


def _approved(case: Case, fields: dict[str, Any], matter: dict[str, Any]) -> contract.CaseApproved:
    return contract.CaseApproved(
        **fields,
        applicant=case.applicant,
        result_licence_type=(matter.get("result") or {}).get("licence_type"),
        approved_on=case.decided_on,
    )


async def officer_action(
    session: AsyncSession, ctx: Context, principal: Principal, case_no: str, body: ActionRequest, if_match: str | None
) -> Case:
    if principal.kind != "officer":
        raise Problem(403, "forbidden", "Not allowed", "officer actions need an officer token")
    version = parse_version(if_match, required=True)
    case = await visible_case(session, principal, case_no)
    return await apply_action(
        session, ctx, case, action=body.action, roles=principal.roles, actor=principal.subject,
        expected_version=version, body=body, principal=principal,
    )  # fmt: skip


async def applicant_action(
    session: AsyncSession,
    ctx: Context,
    principal: Principal,
    case_no: str,
    action: str,
    body: ResubmitRequest | None,
    if_match: str | None,
) -> Case:
    if principal.kind == "officer":
        raise Problem(403, "forbidden", "Not allowed", f"{action} is the applicant's action")
    case = await visible_case(session, principal, case_no)
    check_mandate(principal, case.matter_code)  # a resubmission or withdrawal is applying, too
    return await apply_action(
        session, ctx, case, action=action, roles=("applicant",), actor="applicant",
        expected_version=parse_version(if_match, required=False), body=body, principal=principal,
    )  # fmt: skip


async def recompute_provisional(session: AsyncSession) -> int:
    """After a calendar year is loaded: recompute every open case whose deadline was provisional."""
    calendar = await calendars.load(session)
    open_cases = (
        await session.execute(
            select(Case).where(Case.due_provisional.is_(True), Case.state.not_in(tuple(states.TERMINAL)))
        )
    ).scalars()
    count = 0
    for case in open_cases:
        await recompute_clocks(session, calendar, case, await matter_of_case(session, case))
        count += 1
    await session.flush()
    return count


async def complete_by_event(session: AsyncSession, ctx: Context, case_no: str, *, action: str, note: dict) -> None:
    """Express or licence told us something about a case: apply it as the system, if still possible."""
    case = (await session.execute(select(Case).where(Case.case_no == case_no))).scalar_one_or_none()
    if case is None:
        return
    try:
        await apply_action(session, ctx, case, action=action, roles=("system",), actor="system",
                           expected_version=None, system_detail=note)  # fmt: skip
    except Problem:
        return  # already completed, withdrawn, …: nothing to do


async def note_on_timeline(session: AsyncSession, ctx: Context, case_no: str, action: str, note: dict) -> None:
    case = (await session.execute(select(Case).where(Case.case_no == case_no))).scalar_one_or_none()
    if case is not None:
        entry = steps.line(case, ctx.current_time(), action, "system", case.state, case.state, dumps(note))
        await steps.write(session, case, steps.Step(entry))
