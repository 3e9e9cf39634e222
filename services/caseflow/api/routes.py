"""Caseflow's HTTP API: translation only; the rules live in domain/ and the modules it calls.
Who may call what is domain/access.py's table, asked by the use cases (cases.access.authorize)."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from kit.db import request_session
from kit.deps import Caller, Db, DbSession, from_app_state
from kit.errors import Problem
from kit.pagination import Page, PageParams, PageQuery, Pagination
from kit.responses import json_answer
from services.caseflow import blobs, calendars, cases, notifications, supervision
from services.caseflow.api import query_models
from services.caseflow.calendar_schemas import FIRST_YEAR, LAST_YEAR, CalendarYearOut, DuePreview
from services.caseflow.cases import (
    branch_actions,
    common,
    counter,
    detail_rows,
    evaluations,
    fees,
    handout,
    hot_steps,
    hot_submission,
    instant,
    materials,
    pickups,
    prefill,
    prints,
    reading,
    submission,
    transitions,
)
from services.caseflow.cases.access import authorize, visible_case
from services.caseflow.domain import access
from services.caseflow.instant_schemas import PrefillOut, SampleReviewIn, SampleReviewOut, SampleReviews
from services.caseflow.schemas import (
    ActionRequest,
    BranchActionRequest,
    CaseDetail,
    CaseList,
    EvaluationIn,
    EvaluationOut,
    FeesAssessIn,
    HandOutIn,
    HandOutSheet,
    HelpedCases,
    OverridesIn,
    PickupIn,
    PickupOut,
    ProgressOut,
    PublishedResults,
    ResubmitRequest,
    SandboxMessage,
    SubmitRequest,
    UploadOut,
    Worklist,
)

# The kit documents the common problems (kit.openapi); 428 is caseflow's own.
router = APIRouter(responses={428: {"description": "Idempotency-Key or If-Match required"}})

CaseNo = Annotated[str, Path(max_length=32, description="办件编号")]
IfMatch = Annotated[str | None, Header(max_length=20, description="the case version (ETag) the action is for")]
States = Literal[
    "submitted", "correction_requested", "resubmitted", "accepted", "reviewed", "suspended", "approved",
    "delivering", "completed", "rejected", "denied", "withdrawn",
]  # fmt: skip
IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,100}$"  # visible ASCII: what a client generates (a UUID, say)


# caseflow's start-up context (settings, case numbers, clock), as every handler reaches it.
context = from_app_state("caseflow", cases.Context)
# The kit's session-per-request unit of work (committed when the block ends without an exception),
# for what a hot path on the driver leaves to the session (cases/hot_submission.py, hot_steps.py).
unit_of_work = asynccontextmanager(request_session)


def _with_etag(response: Response, case) -> None:
    response.headers["ETag"] = f'"{case.version}"'


async def _answer(session, response: Response, case, caller) -> dict[str, Any]:
    """The case as its caller may see it, with its version as the ETag for the next If-Match."""
    _with_etag(response, case)
    return await reading.detail_out(session, case, caller)


def _check_key(idempotency_key: str | None, what: str) -> None:
    """The Idempotency-Key a retried write needs: present (428) and visible ASCII (422)."""
    if idempotency_key is None:
        raise Problem(428, "idempotency-key-required", "Idempotency-Key required",
                      f"send an Idempotency-Key header (e.g. a UUID) so that a retry cannot create a second {what}",
                      header="Idempotency-Key")  # fmt: skip
    if not re.fullmatch(IDEMPOTENCY_KEY, idempotency_key):
        raise Problem(422, "validation", "Request is not valid", "Idempotency-Key: 1–100 visible ASCII characters",
                      errors=[{"field": "header.Idempotency-Key", "rule": "pattern",
                               "message": "1–100 visible ASCII characters"}])  # fmt: skip


@router.post("/cases", status_code=201, tags=["cases"], response_model=CaseDetail, response_model_exclude_unset=True)
async def submit_case(
    body: SubmitRequest,
    request: Request,
    response: Response,
    db: Db,
    caller: Caller,
    idempotency_key: Annotated[
        str | None, Header(description="required: a retry with the same key returns the same case")
    ] = None,
) -> Any:
    """Submit a case (201), or get back the one this Idempotency-Key already made (200)."""
    _check_key(idempotency_key, "case")
    assert idempotency_key is not None
    ctx = context(request)
    created = await hot_submission.submit_on(db, ctx, caller, body, idempotency_key)
    if created is not None:
        return json_answer(created.answer, status_code=201, headers={"ETag": f'"{created.version}"'})
    async with unit_of_work(request) as session:
        submitted = await submission.submit(session, ctx, caller, body, idempotency_key)
        case = submitted.case
        _with_etag(response, case)
        if not submitted.created:
            response.status_code = 200
            return await reading.detail_out(session, case, caller, with_query_code=True)
        matter = await common.matter_of_case(session, case)
        relation = access.case_relation(caller, applicant=case.applicant, department=case.department,
                                        branch_departments=[], matter_code=case.matter_code,
                                        helped_by=case.helped_by)  # fmt: skip
        return reading.detail_of(case, matter=matter, relation=relation, roles=caller.roles, pauses=[],
                                 timeline=submitted.timeline or [], branches=[], evaluation=None,
                                 with_query_code=True, fees_row=submitted.fees)  # fmt: skip


@router.get("/cases", tags=["cases"], response_model=CaseList)
async def my_cases(
    session: DbSession, caller: Caller, pages: Pagination, state: States | None = None
) -> dict[str, Any]:
    """The caller's cases (an agent: those its mandate covers), newest first."""
    return await reading.my_cases(session, caller, state=state, pages=pages)


@router.get("/cases/{case_no}", tags=["cases"], response_model=CaseDetail, response_model_exclude_unset=True)
async def case_detail(case_no: CaseNo, db: Db, caller: Caller) -> Response:
    """One case as the caller may see it; 404 for anyone who may not."""
    detail, version = await detail_rows.read_detail(db, caller, case_no, with_query_code=caller.kind != "officer")
    return json_answer(detail, headers={"ETag": f'"{version}"'})


@router.post("/cases/{case_no}/actions", tags=["officers"], response_model=CaseDetail,
             response_model_exclude_unset=True)  # fmt: skip
async def officer_action(
    case_no: CaseNo,
    body: ActionRequest,
    request: Request,
    response: Response,
    db: Db,
    caller: Caller,
    if_match: IfMatch = None,
) -> Any:
    """An officer of the case's department takes a step (If-Match: the case version)."""
    ctx = context(request)
    try:
        stepped = await hot_steps.officer_action_on(db, ctx, caller, case_no, body, if_match)
        if stepped is not None:
            return json_answer(stepped.answer, headers={"ETag": f'"{stepped.version}"'})
        async with unit_of_work(request) as session:
            case = await transitions.officer_action(session, ctx, caller, case_no, body, if_match)
            return await _answer(session, response, case, caller)
    except transitions.SecondCorrectionRefused as refused:
        # Refused, and counted as a process anomaly: recorded in its own transaction (the step's
        # own wrote nothing).
        async with request.app.state.sessionmaker() as other, other.begin():
            await cases.record_anomaly(
                other, case_id=refused.case_id, case_no=refused.case_no, department=refused.department,
                step="second_correction", detail=f"second correction request by {caller.subject}",
                at=ctx.current_time(),
            )  # fmt: skip
            state = (await visible_case(other, caller, case_no)).state
        raise Problem(
            409, "second-correction", "Only one correction notice",
            "the case was already sent back once for corrections (Art. 32: ALL items in ONE notice)",
            state=state,
        ) from None  # fmt: skip


@router.post("/cases/{case_no}/branches/{department}/actions", tags=["officers"], response_model=CaseDetail,
             response_model_exclude_unset=True)  # fmt: skip
async def branch_action(
    case_no: CaseNo,
    department: Annotated[str, Path(max_length=40, pattern=r"^[A-Z0-9_-]+$")],
    body: BranchActionRequest,
    request: Request,
    response: Response,
    session: DbSession,
    caller: Caller,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """并联审批: a parallel department decides its branch (If-Match: the branch's version)."""
    case = await branch_actions.branch_action(
        session, context(request), caller, case_no, department, action=body.action, reason=body.reason,
        if_match=if_match,
    )  # fmt: skip
    return await _answer(session, response, case, caller)


@router.post("/cases/{case_no}/resubmit", tags=["cases"], response_model=CaseDetail,
             response_model_exclude_unset=True)  # fmt: skip
async def resubmit(
    case_no: CaseNo,
    body: ResubmitRequest,
    request: Request,
    response: Response,
    session: DbSession,
    caller: Caller,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """补正: the applicant sends the corrections asked for (changed form fields, replaced materials)."""
    case = await transitions.applicant_action(session, context(request), caller, case_no, "resubmit", body, if_match)
    return await _answer(session, response, case, caller)


@router.post("/cases/{case_no}/pickups", status_code=201, tags=["cases"], response_model=PickupOut)
async def request_pickup(
    case_no: CaseNo,
    body: PickupIn,
    request: Request,
    response: Response,
    session: DbSession,
    caller: Caller,
    idempotency_key: Annotated[
        str | None, Header(description="required: a retry with the same key returns the same pickup")
    ] = None,
) -> dict[str, Any]:
    """上门收件: the carrier collects the case's originals (201), or the pickup this key made (200)."""
    _check_key(idempotency_key, "pickup")
    assert idempotency_key is not None
    _, row, created = await pickups.request_pickup(session, context(request), caller, case_no, body, idempotency_key)
    if not created:
        response.status_code = 200
    return pickups.pickup_out(row, access.APPLICANT)


@router.post("/cases/{case_no}/withdraw", tags=["cases"], response_model=CaseDetail,
             response_model_exclude_unset=True)  # fmt: skip
async def withdraw(
    case_no: CaseNo,
    request: Request,
    response: Response,
    session: DbSession,
    caller: Caller,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """The applicant withdraws the case (before a decision)."""
    case = await transitions.applicant_action(session, context(request), caller, case_no, "withdraw", None, if_match)
    return await _answer(session, response, case, caller)


@router.post("/cases/{case_no}/prints", tags=["cases"], response_class=Response,
             responses={200: {"content": {"application/pdf": {}}, "description": "the 办件进度单"}})  # fmt: skip
async def print_case(case_no: CaseNo, request: Request, session: DbSession, caller: Caller) -> Response:
    """The applicant's 办件进度单 (kiosk, counter or online), with the QR code of the public progress
    page; every print is a ``printed`` line on the case's timeline (channel, kiosk device)."""
    document = await prints.print_progress_sheet(session, context(request), caller, case_no)
    return Response(document, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{case_no}.pdf"',
                             "Cache-Control": "private, no-store"})  # fmt: skip


@router.get("/progress/{case_no}", tags=["public"], response_model=ProgressOut)
async def public_progress(
    case_no: CaseNo, request: Request, db: Db,
    code: Annotated[str, Query(min_length=4, max_length=12, pattern=r"^[A-Za-z0-9]+$")],
) -> Response:  # fmt: skip
    """Progress with the query code sent at submission; wrong codes are limited per case (429)."""
    return json_answer(await reading.progress(db, context(request), case_no, code))


class WorklistFilters(BaseModel):
    """``GET /worklist``'s query besides the page (``query_models``: read by the route itself)."""

    state: States | None = None
    matter_code: str | None = Field(None, max_length=64)
    overdue: bool = False
    due_before: date | None = None


def _worklist_query(request: Request) -> tuple[WorklistFilters, PageQuery]:
    """The worklist's filters and page, in the order FastAPI solved them when the route declared
    them (``Pagination`` first): a page size above the service's limit is its problem at once; other
    bad values are one 422 listing each, the page's first."""
    errors: list[dict[str, Any]] = []
    page = query_models.read(PageParams, request, errors)
    pages = page.bounded(request.app.state.settings.max_page_size) if page is not None else None
    filters = query_models.read(WorklistFilters, request, errors)
    if errors:
        raise RequestValidationError(errors)
    assert filters is not None and pages is not None
    return filters, pages


@router.get("/worklist", tags=["officers"], response_model=Worklist,
            openapi_extra={"parameters": query_models.parameters(WorklistFilters, PageParams)})  # fmt: skip
async def worklist(request: Request, db: Db, caller: Caller) -> Response:
    """The cases the officer's roles act on in its department (and its pending branches)."""
    filters, pages = _worklist_query(request)
    return json_answer(await reading.worklist(
        db, caller, state=filters.state, matter_code=filters.matter_code,
        overdue_on=context(request).today() if filters.overdue else None, due_before=filters.due_before,
        pages=pages,
    ))  # fmt: skip


DEPARTMENT_CODE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$"  # a NUL or a surrogate is a 422, never a query


@router.get("/supervision/warnings", tags=["supervision"], response_model=Page[dict[str, Any]])
async def supervision_warnings(
    session: DbSession,
    caller: Caller,
    pages: Pagination,
    department: Annotated[str | None, Query(max_length=40, pattern=DEPARTMENT_CODE)] = None,
    level: Literal["yellow", "red", "anomaly"] | None = None,
) -> dict[str, Any]:
    return await supervision.list_warnings(session, caller, department=department, level=level, pages=pages)


@router.get("/supervision/stats", tags=["supervision"])
async def supervision_stats(
    session: DbSession,
    caller: Caller,
    department: Annotated[str | None, Query(max_length=40, pattern=DEPARTMENT_CODE)] = None,
) -> list[dict]:
    return await supervision.statistics(session, caller, department=department)


@router.put("/calendar/overrides/{year}", tags=["calendar"])
async def load_calendar_year(
    year: Annotated[int, Path(ge=FIRST_YEAR, le=LAST_YEAR)],
    body: OverridesIn,
    request: Request,
    session: DbSession,
    caller: Caller,
) -> dict[str, Any]:
    """The platform administrator loads a year's official calendar (platform-wide: every department's
    deadlines count in it); provisional deadlines are recomputed at once."""
    access.require(caller, "calendar.write")
    result = await calendars.replace_year(
        session, year=year, holidays=body.holidays, workdays=body.workdays, loaded_by=caller.subject
    )
    result["recomputed"] = await cases.recompute_provisional(session)
    return result


@router.post("/materials", status_code=201, tags=["cases"], response_model=UploadOut)
async def upload_material(request: Request, file: UploadFile, session: DbSession, caller: Caller) -> dict[str, Any]:
    """Upload one material file (photo or PDF); reference its id in a submission or resubmission."""
    access.require(caller, "material.upload")
    return await _store_upload(request, file, session, caller)


async def _store_upload(request: Request, file: UploadFile, session, caller) -> dict[str, Any]:
    limit = context(request).settings.max_upload_bytes
    content = await file.read(limit + 1)
    blob = await blobs.store_upload(
        session, request.app.state.blob_store, owner=caller.subject, content=content, filename=file.filename,
        max_bytes=limit,
    )  # fmt: skip
    return {"id": blob.id, "sha256": blob.sha256, "content_type": blob.content_type, "size": blob.size}


@router.post("/cases/{case_no}/evaluation", status_code=201, tags=["cases"], response_model=EvaluationOut)
async def evaluate(case_no: CaseNo, body: EvaluationIn, request: Request, session: DbSession, caller: Caller) -> dict:
    """好差评 after completion, once; a score of 1 or 2 opens a rectification due in 15 working days."""
    return await evaluations.evaluate(session, context(request), caller, case_no, score=body.score,
                                      comment=body.comment)  # fmt: skip


@router.get("/results", tags=["public"], response_model=PublishedResults)
async def published_results(
    session: DbSession,
    pages: Pagination,
    matter_code: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """结果公示 (Art. 40): grant decisions with the applicant's name masked."""
    return await evaluations.published_results(session, matter_code=matter_code, pages=pages)


# ---- the hall (ADR 0026): hand-out at the window, assessed fees, the counter's cases ------------------
@router.get("/cases/{case_no}/hand-out", tags=["officers"], response_model=HandOutSheet)
async def hand_out_sheet(case_no: CaseNo, session: DbSession, caller: Caller) -> dict[str, Any]:
    """统一窗口出件: what the window sees of a case before handing its result out (a counter officer of
    any department): the masked applicant, the version, and what it still waits for."""
    return await handout.hand_out_sheet(session, caller, case_no)


@router.post("/cases/{case_no}/hand-out", tags=["officers"], response_model=HandOutSheet)
async def hand_out(
    case_no: CaseNo,
    body: HandOutIn,
    request: Request,
    response: Response,
    session: DbSession,
    caller: Caller,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """统一窗口出件: hand an approved window result out and complete the case (If-Match: the case
    version); the same hand-out again changes nothing."""
    case = await handout.hand_out(session, context(request), caller, case_no, body, if_match)
    _with_etag(response, case)
    return await handout.sheet_out(session, case)


@router.post("/cases/{case_no}/fees", tags=["officers"], response_model=CaseDetail,
             response_model_exclude_unset=True)  # fmt: skip
async def assess_fees(
    case_no: CaseNo,
    body: FeesAssessIn,
    request: Request,
    response: Response,
    session: DbSession,
    caller: Caller,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """An officer of the department sets the amounts of an assessed matter's fees while unpaid
    (If-Match: the case version); payment is told the new revision."""
    version = transitions.parse_version(if_match, required=True)
    assert version is not None
    case, _ = await fees.assess(session, context(request), caller, case_no, body.items, body.reason, version)
    return await _answer(session, response, case, caller)


@router.get("/counter/cases", tags=["officers"], response_model=HelpedCases)
async def counter_cases(session: DbSession, caller: Caller, pages: Pagination) -> dict[str, Any]:
    """The cases the calling counter officer applied for on applicants' behalf (帮办), newest first."""
    return await counter.helped_cases(session, caller, pages=pages)


# Only on a sandbox deployment (settings.sandbox): main.py leaves it out otherwise.
sandbox_router = APIRouter(prefix="/sandbox", tags=["sandbox"])


@sandbox_router.get("/notifications", response_model=list[SandboxMessage])
async def sandbox_notifications(
    session: DbSession,
    recipient: Annotated[str | None, Query(max_length=40)] = None,
    case_no: Annotated[str | None, Query(max_length=32)] = None,
) -> list[dict[str, Any]]:
    """What the sandbox SMS/WeChat adapter 'sent' (sandbox deployments only: never in production)."""
    return await notifications.sandbox_messages(session, recipient=recipient, case_no=case_no)


@router.post("/cases/{case_no}/materials", status_code=201, tags=["cases"], response_model=UploadOut)
async def upload_case_material(
    case_no: CaseNo, request: Request, file: UploadFile, session: DbSession, caller: Caller
) -> dict[str, Any]:
    """Upload a file for one of your cases (a correction); reference its id in the resubmission."""
    await authorize(session, caller, "case.upload", case_no)
    return await _store_upload(request, file, session, caller)


@router.get(
    "/cases/{case_no}/materials/{blob_id}", tags=["cases"], response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "image/jpeg": {}, "image/png": {}, "image/heic": {}},
                     "description": "the material's bytes, as an attachment"}},
)  # fmt: skip
async def download_material(
    case_no: CaseNo, blob_id: Annotated[str, Path(max_length=36)], request: Request, session: DbSession,
    caller: Caller,
) -> Response:  # fmt: skip
    """A case's uploaded material, for its applicant (or agent) and the officers handling it (a branch
    department: the materials its matters ask for); every officer's read is on the case's timeline."""
    found = await materials.download(session, context(request), request.app.state.blob_store, caller, case_no,
                                     blob_id)  # fmt: skip
    return Response(found.content, media_type=found.content_type, headers=found.headers)


# ---- the public working-day calendar (no token needed: front-ends show due dates before login) ------
@router.get("/calendar/due", tags=["calendar", "public"], response_model=DuePreview)
async def calendar_due_preview(
    session: DbSession,
    matter_code: Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")],
    accepted_on: Annotated[date, Query(alias="from", description="the day the application would be accepted")],
    matter_version: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> dict[str, Any]:
    """When a decision on this matter would be due if accepted on ``from``: by the guide's statutory
    limit, by its promised limit, and the one that governs (with the rule and the explanation)."""
    if not FIRST_YEAR <= accepted_on.year <= LAST_YEAR:
        raise Problem(422, "validation", "Request is not valid", f"from: a date in {FIRST_YEAR}..{LAST_YEAR}",
                      errors=[{"field": "query.from", "rule": "range", "message": f"{FIRST_YEAR}..{LAST_YEAR}"}])  # fmt: skip
    return await calendars.due_preview(
        session, matter_code=matter_code, version=matter_version, accepted_on=accepted_on
    )


@router.get("/calendar/{year}", tags=["calendar", "public"], response_model=CalendarYearOut)
async def calendar_year(year: Annotated[int, Path(ge=FIRST_YEAR, le=LAST_YEAR)], session: DbSession) -> dict[str, Any]:
    """A year's days off and 调休 make-up working days, each official (the State Council notice, via
    chinesecalendar or loaded by the platform administrator) or provisional (the statutory holidays
    of 全国年节及纪念日放假办法 and their 补假, before the year's notice is out), with its source."""
    return (await calendars.load(session)).year_view(year)


# ---- 秒批 reviews and 零填报 (ADR 0027) ----------------------------------------------------------
MatterCode = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")]


@router.get("/matters/{code}/prefill", tags=["cases"], response_model=PrefillOut)
async def prefill_form(code: MatterCode, request: Request, session: DbSession, caller: Caller) -> dict[str, Any]:
    """零填报: the matter's form filled from the caller's verified data (token, e-licences)."""
    return await prefill.prefill_for(session, context(request), caller, code)


@router.get("/reviews", tags=["officers"], response_model=SampleReviews)
async def sampled_reviews(session: DbSession, caller: Caller, pages: Pagination,
                          reviewed: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """秒批: the automatic decisions sampled for an officer's review (the department's; oversight: all)."""
    return await instant.sampled_decisions(session, caller, reviewed=reviewed, pages=pages)


@router.post("/cases/{case_no}/sample-review", tags=["officers"], response_model=SampleReviewOut)
async def sample_review(case_no: CaseNo, body: SampleReviewIn, request: Request, session: DbSession,
                        caller: Caller) -> dict[str, Any]:  # fmt: skip
    """Agree or disagree with a sampled automatic decision (once); a disagreement is a supervision anomaly."""
    return await instant.review_sample(session, context(request), caller, case_no, verdict=body.verdict,
                                       note=body.note)  # fmt: skip
