"""秒批秒办 (instant approval) of cases (docs/adr/0027-instant-approval-and-zero-fill.md).

A matter whose published version has ``instant`` rules is evaluated at submission, on verified
facts only (domain/instant.py): the token (kind, level, name; age and division from the GB 11643
number), the applicant's e-licences of the types the rules name (the licence service's
``/holdings``, asked outside any transaction, like the material checks) and the checked form.

- A rule holds and nothing is to be paid first: in the submission's own transaction the case is
  accepted and approved by the platform (one timeline line, actor ``system``, naming the rule, its
  description and the facts that decided, ID numbers masked; ``CaseAccepted`` and ``CaseApproved``
  with ``automatic=true`` and ``rule``, so licence issues the result as for any approval).
- A rule holds but the matter's ``payment.due_before`` is ``acceptance`` or ``decision``: the
  verdict is stored as ``pending``; ``decide_pending`` applies it once paid (the payment handler
  calls it).
- No rule holds (or the licence service did not answer): the case goes to officers as usual; the
  timeline line ``instant_check`` tells them which conditions failed, with which values.

A share (the matter's ``sample_rate``) of automatic decisions is sampled for review by an officer
of the department (``GET /reviews``, ``POST /cases/{no}/sample-review``); a disagreement raises the
supervision anomaly ``instant_disagreed``. Whether a case is sampled is drawn from a hash of the
``instant_sample_seed`` setting and the case number: deterministic for a seed, no shared state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import caseflow as contract
from kit.auth import Principal
from kit.errors import Problem
from kit.events import envelope
from kit.pagination import PageQuery
from services.caseflow import calendars, notifications, steps
from services.caseflow.adapters.licences import LicenceUnavailable
from services.caseflow.cases.access import authorize
from services.caseflow.cases.common import Context, base_fields, dumps, matter_of_case, recompute_clocks, record_anomaly
from services.caseflow.domain import access, states
from services.caseflow.domain.instant import (
    Holding,
    Verdict,
    applicant_facts,
    evaluate,
    form_facts,
    licence_facts,
    licence_types_of,
    shown,
)
from services.caseflow.models import Case, CaseEvent, CaseInstant

log = logging.getLogger("yiwang.caseflow.instant")

_PROCESS_SEED = secrets.token_hex(16)  # without a configured seed: a fresh one per start
ACTOR = "system"


@dataclass(frozen=True)
class Evaluation:
    """The rules' verdict at submission; ``unavailable``: the licence service did not answer, so
    no licence fact was known (its conditions failed as missing)."""

    verdict: Verdict
    unavailable: bool = False


def rules_of(matter: dict[str, Any]) -> dict[str, Any] | None:
    """The matter's instant block. None for a bundle's combined matter and for a matter with
    parallel departments: the platform never decides for other departments (catalog refuses both)."""
    instant = matter.get("instant")
    if not isinstance(instant, dict) or "bundle" in matter or matter.get("parallel_departments"):
        return None
    return instant


def licence_types(matter: dict[str, Any]) -> list[str]:
    return sorted(licence_types_of(rules_of(matter)))


def waits_for_payment(matter: dict[str, Any]) -> bool:
    """The matter's fees are paid before acceptance or decision: an automatic approval waits."""
    payment = matter.get("payment")
    return isinstance(payment, dict) and payment.get("due_before") in {"acceptance", "decision"}


async def read_licences(ctx: Context, matter: dict[str, Any], holder: str,
                        case_no: str | None) -> tuple[list[Holding], bool]:  # fmt: skip
    """The applicant's licences of the types the rules name (call outside any transaction), and
    whether the licence service failed to answer (then: none, and officers decide)."""
    types = licence_types(matter)
    if not types:
        return [], False
    try:
        return await ctx.licences.holdings(holder, types, purpose=f"instant:{matter['code']}", case_no=case_no), False
    except LicenceUnavailable as exc:
        log.warning("licence service unavailable for 秒批 facts of %s: %s", matter.get("code"), exc)
        return [], True


def evaluate_submission(matter: dict[str, Any], principal: Principal, *, name: str | None, form: dict[str, Any],
                        holdings: list[Holding], unavailable: bool, today: date) -> Evaluation:  # fmt: skip
    instant = rules_of(matter)
    facts = applicant_facts(subject=principal.subject, kind=principal.kind, level=principal.level, name=name,
                            today=today)  # fmt: skip
    if not unavailable:
        facts.update(licence_facts(licence_types_of(instant), holdings, today))
    facts.update(form_facts(form))
    return Evaluation(evaluate(instant, facts), unavailable)


def approve_now(case: Case, matter: dict[str, Any], evaluation: Evaluation, today: date) -> bool:
    """Set a new case accepted and approved when a rule decided and nothing is paid first (the
    caller computes its clocks afterwards); whether it did."""
    if evaluation.verdict.decided is None or waits_for_payment(matter):
        return False
    case.state = "approved"
    case.accepted_on = today
    case.decided_on = today
    return True


def sampled(ctx: Context, case_no: str, matter: dict[str, Any]) -> bool:
    """Whether this automatic decision is sampled for review (share: the matter's sample_rate)."""
    rate = (rules_of(matter) or {}).get("sample_rate", 0.1)
    rate = float(rate) if isinstance(rate, int | float) and not isinstance(rate, bool) else 0.1
    configured = ctx.settings.instant_sample_seed
    seed = configured.get_secret_value() if configured is not None else _PROCESS_SEED
    draw = int.from_bytes(hashlib.sha256(f"{seed}:{case_no}".encode()).digest()[:8], "big") / 2**64
    return draw < rate


def _decision_detail(evaluation_out: dict[str, Any]) -> dict[str, Any]:
    decided = next(r for r in evaluation_out["rules"] if r["held"])
    return {"automatic": True, "rule": decided["id"], "description": decided["description"],
            "facts": decided["facts"]}  # fmt: skip


def _verdict_out(evaluation: Evaluation) -> dict[str, Any]:
    out = evaluation.verdict.out()
    for rule in out["rules"]:
        rule["facts"] = shown(rule["facts"])
        for failed in rule["failed"]:
            failed["actual"] = shown({"x": failed["actual"]})["x"]
    if evaluation.unavailable:
        out["licences_unavailable"] = True
    return out


def _approved_event(case: Case, matter: dict[str, Any], fields: dict[str, Any], rule: str) -> contract.CaseApproved:
    licence_type = (matter.get("result") or {}).get("licence_type")
    licence = {"applicant_kind": case.applicant_kind, "applicant_name": case.applicant_name,
               "form": json.loads(case.form)} if licence_type else {}  # fmt: skip
    return contract.CaseApproved(**fields, applicant=case.applicant, approved_on=case.decided_on,
                                 result_licence_type=licence_type, automatic=True, rule=rule, **licence)  # fmt: skip


def _approval_step(case: Case, matter: dict[str, Any], from_state: str, detail: dict[str, Any],
                   now: datetime, *, accepted_before: bool) -> steps.Step:  # fmt: skip
    fields = base_fields(case, ACTOR, now)
    events: list[Any] = []
    if not accepted_before:
        events.append(contract.CaseAccepted(**fields, accepted_on=case.accepted_on, deemed=False,
                                            applicant=case.applicant, branches=[]))  # fmt: skip
    events.append(_approved_event(case, matter, fields, detail["rule"]))
    return steps.Step(
        steps.line(case, now, "instant_approve", ACTOR, from_state, case.state, dumps(detail)),
        message=notifications.message(case, "approve", detail, now),
        events=[envelope(e, subject=case.case_no) for e in events],
    )


async def record(session: AsyncSession, ctx: Context, case: Case, matter: dict[str, Any], evaluation: Evaluation,
                 now: datetime, *, approved: bool) -> list[CaseEvent]:  # fmt: skip
    """After a new case is inserted, in its transaction: the verdict's line (and, approved, its
    events) and the stored verdict. Returns the lines written, for the submission's answer."""
    verdict = _verdict_out(evaluation)
    decided = evaluation.verdict.decided
    is_sampled = approved and sampled(ctx, case.case_no, matter)
    if approved:
        step = _approval_step(case, matter, "submitted", _decision_detail(verdict), now, accepted_before=False)
        status = "approved"
    else:
        status = "pending" if decided else "referred"
        detail: dict[str, Any] = {"instant": status}
        if decided:
            detail.update(rule=decided.id, description=decided.description, waiting_for="payment")
        else:
            detail["failed"] = [{"rule": r["id"], "description": r["description"], "failed": r["failed"]}
                                for r in verdict["rules"]]  # fmt: skip
            if evaluation.unavailable:
                detail["licences_unavailable"] = True
        step = steps.Step(steps.line(case, now, "instant_check", ACTOR, case.state, case.state, dumps(detail)))
    await steps.write(session, case, step)
    session.add(CaseInstant(case_id=case.id, case_no=case.case_no, department=case.department, status=status,
                            rule=decided.id if decided else None, verdict=dumps(verdict), evaluated_at=now,
                            decided_at=now if approved else None, sampled=is_sampled))  # fmt: skip
    return [step.line]


async def decide_pending(session: AsyncSession, ctx: Context, case: Case, now: datetime) -> bool:
    """Apply a stored positive verdict once its fee is paid (the payment handler calls this in its
    transaction, with the case loaded): the case is accepted (if not yet) and approved by the
    platform as at submission. False, changing nothing, when no verdict waits or the case has moved
    past where it could be approved (withdrawn, rejected, decided); a verdict that can no longer
    apply is marked ``lapsed``."""
    row = (
        await session.execute(select(CaseInstant).where(CaseInstant.case_id == case.id).with_for_update())
    ).scalar_one_or_none()
    if row is None or row.status != "pending":
        return False
    try:
        new_state = states.transition(case.state, "instant_approve", states.SYSTEM)
    except states.TransitionError:
        if case.state not in states.BEFORE_DECISION:
            row.status = "lapsed"
        return False
    matter = await matter_of_case(session, case)
    today = ctx.today()
    old_state, accepted_before = case.state, case.accepted_on is not None
    with session.no_autoflush:
        case.state = new_state
        case.accepted_on = case.accepted_on or today
        case.decided_on = today
        case.updated_at = now
        await recompute_clocks(session, await calendars.load(session), case, matter)
    detail = _decision_detail(json.loads(row.verdict))
    detail["paid"] = True
    await steps.move(session, case, _approval_step(case, matter, old_state, detail, now,
                                                   accepted_before=accepted_before))  # fmt: skip
    row.status = "approved"
    row.decided_at = now
    row.sampled = sampled(ctx, case.case_no, matter)
    return True


# ---- sampled review ------------------------------------------------------------------------------
def review_out(row: CaseInstant) -> dict[str, Any]:
    return {
        "case_no": row.case_no,
        "department": row.department,
        "rule": row.rule,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "verdict": json.loads(row.verdict),
        "review": row.review,
        "review_note": row.review_note,
        "reviewed_by": row.reviewed_by,
        "reviewed_at": row.reviewed_at.isoformat() if row.reviewed_at else None,
    }


async def sampled_decisions(session: AsyncSession, principal: Principal, *, reviewed: bool | None,
                            pages: PageQuery) -> dict[str, Any]:  # fmt: skip
    """The automatic decisions sampled for review in the officer's department (supervisors and the
    platform admin: all), oldest first."""
    relation = access.require(principal, "sample.list")
    query = select(CaseInstant).where(CaseInstant.sampled.is_(True))
    if not access.sees_every_department(relation):
        query = query.where(CaseInstant.department == principal.department)
    if reviewed is not None:
        query = query.where(CaseInstant.review.is_not(None) if reviewed else CaseInstant.review.is_(None))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(CaseInstant.decided_at, CaseInstant.case_id)
                                  .offset(pages.offset).limit(pages.limit))).scalars()  # fmt: skip
    return pages.answer(total, [review_out(r) for r in rows])


async def review_sample(session: AsyncSession, ctx: Context, principal: Principal, case_no: str, *,
                        verdict: str, note: str | None) -> dict[str, Any]:  # fmt: skip
    """An officer agrees or disagrees with a sampled automatic decision, once; a disagreement
    raises the supervision anomaly ``instant_disagreed``."""
    case = (await authorize(session, principal, "case.sample_review", case_no)).case
    row = await session.get(CaseInstant, case.id)
    if row is None or not row.sampled:
        raise Problem(409, "not-sampled", "Not sampled", "this case has no automatic decision sampled for review")
    if verdict == "disagree" and not note:
        raise Problem(422, "validation", "Request is not valid", "note: a disagreement states its reasons",
                      errors=[{"field": "note", "rule": "required", "message": "a disagreement states its reasons"}])  # fmt: skip
    now = ctx.current_time()
    claimed = await session.execute(
        update(CaseInstant)
        .where(CaseInstant.case_id == case.id, CaseInstant.review.is_(None))
        .values(review=verdict, review_note=note, reviewed_by=principal.subject, reviewed_at=now)
    )
    if not claimed.rowcount:
        raise Problem(409, "already-reviewed", "Already reviewed", "this sampled decision was reviewed already")
    if verdict == "disagree":
        await record_anomaly(session, case_id=case.id, case_no=case.case_no, department=case.department,
                             step="instant_disagreed", detail=f"{principal.subject} disagreed with rule {row.rule}",
                             at=now)  # fmt: skip
    await session.refresh(row)
    return review_out(row)
