"""Caseflow's tables.

``matter_definitions`` keeps every published version (a case pins one); ``cases`` is the case with
its state, optimistic ``version`` and the current clock (``clock_step``, ``due_on``) denormalised
for the worklist and the supervision timer; ``case_events`` is the timeline; ``case_pauses`` the
correction and Art. 45 pauses the clocks are recomputed from; ``supervision_warnings`` the
ledger, unique per (case, step, level) so concurrent timers raise each warning once;
``case_licences`` the e-licences issued for cases (from licence's events); ``case_shipments`` the
EMS shipments of a case (its result delivered, its originals collected) as express reports them.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from kit.consumer import make_inbox_table
from kit.db import UtcDateTime
from kit.outbox import Outbox, make_outbox_table
from services.caseflow.domain.states import TERMINAL

OPEN_CASES = "state NOT IN (" + ", ".join(f"'{state}'" for state in sorted(TERMINAL)) + ")"


class Base(AsyncAttrs, DeclarativeBase):
    """Caseflow's own metadata: no other service's tables in its migrations."""


TS = UtcDateTime()


class MatterDefinition(Base):
    """A published matter version as catalog announced it (``catalog.matter.published``)."""

    __tablename__ = "matter_definitions"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(40), index=True)
    definition: Mapped[str] = mapped_column(Text)  # the MatterPublished payload as JSON
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(TS)


class BundleDefinition(Base):
    """A bundle (套餐 / 一件事) as catalog announced it (``catalog.bundle.published``)."""

    __tablename__ = "bundle_definitions"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    matter_codes: Mapped[str] = mapped_column(Text)  # JSON list, the first one leads
    received_at: Mapped[datetime] = mapped_column(TS)


class CaseNumberSequence(Base):
    """The last sequence number given per division and day (case numbers are unique and readable)."""

    __tablename__ = "case_number_sequences"
    division: Mapped[str] = mapped_column(String(6), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(21), unique=True)
    query_code: Mapped[str] = mapped_column(String(8))
    matter_code: Mapped[str] = mapped_column(String(64))
    matter_version: Mapped[int] = mapped_column(Integer)
    matter_name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(40))
    applicant: Mapped[str] = mapped_column(String(40), index=True)
    applicant_kind: Mapped[str] = mapped_column(String(12))
    # From the verified token (ADR 0002 amendment), never from a request body; None for old tokens.
    applicant_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    contact_phone: Mapped[str | None] = mapped_column(String(11), nullable=True)  # where the SMS go
    agent: Mapped[str | None] = mapped_column(String(40), nullable=True)
    agent_name: Mapped[str | None] = mapped_column(String(200), nullable=True)  # act.name of the token
    state: Mapped[str] = mapped_column(String(24))
    version: Mapped[int] = mapped_column(Integer)
    suspended_from: Mapped[str | None] = mapped_column(String(24), nullable=True)
    correction_count: Mapped[int] = mapped_column(Integer, default=0)
    extension_days: Mapped[int] = mapped_column(Integer, default=0)
    extension_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    online: Mapped[bool] = mapped_column(Boolean, default=True)
    delivery: Mapped[str] = mapped_column(Text)  # JSON {"method": "window"|"ems", ...}
    form: Mapped[str] = mapped_column(Text)  # JSON
    materials: Mapped[str] = mapped_column(Text)  # JSON list
    correction_items: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    fees_paid_yuan: Mapped[str | None] = mapped_column(String(16), nullable=True)
    received_on: Mapped[date] = mapped_column(Date)
    resubmitted_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    accepted_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    deemed_accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    completed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    # The department recorded the originals as received (``originals_received``): no pickup after it.
    originals_received_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    # The running clock, denormalised: which step, when it is due, whether provisional, and every
    # clock's explanation (JSON) as last computed.
    clock_step: Mapped[str | None] = mapped_column(String(20), nullable=True)
    due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    deadlines: Mapped[str] = mapped_column(Text, default="{}")
    idempotency_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # A bundle case (套餐): JSON {code, name, matters: [{code, version, name, department}]}; the case's
    # matter is the bundle's lead, the others are decided in parallel branches.
    bundle: Mapped[str | None] = mapped_column(Text, nullable=True)
    # "platform": applied for here; "department": a mirror of a case the department handles in its
    # own system (ADR 0021), moved only by that department's progress pushes, under its own case id.
    origin: Mapped[str] = mapped_column(String(12), default="platform", server_default="platform")
    department_case_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Where it was applied for (ADR 0026): online | counter | kiosk (the token's chn) | department
    # (mirrored); at the counter, the officer who helped (帮办, the token's hlp.sub and hlp.name).
    channel: Mapped[str] = mapped_column(String(12), default="online", server_default="online")
    helped_by: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)
    helper_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The fees' status (case_fees has the rest): None (nothing to pay) | due | paid | refunded | waived.
    # On the case row, so what waits for payment is decided with the case alone (cases/fees.py).
    fees_status: Mapped[str | None] = mapped_column(String(10), nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)
    __table_args__ = (
        UniqueConstraint("applicant", "idempotency_key", name="uq_cases_applicant_idempotency_key"),
        UniqueConstraint("department", "department_case_id", name="uq_cases_department_case_id"),
        Index("ix_cases_department_state_due", "department", "state", "due_on"),
        Index("ix_cases_clock", "clock_step", "due_on"),
        # The worklist: one department's open cases in deadline order. Partial, so closed cases
        # (most of a city's millions) are not in it and a page is an index walk of ~page_size rows.
        Index(
            "ix_cases_open_by_deadline",
            "department",
            "due_on",
            "id",
            postgresql_where=text(OPEN_CASES),
            sqlite_where=text(OPEN_CASES),
        ),
    )
    # Loaded with the case (one joined query) where it is shown or acted on; new pauses are appended here.
    pauses: Mapped[list[CasePause]] = relationship(order_by="CasePause.id")
    # The timeline, read with the case; lines are inserted by steps.write, never through this.
    timeline: Mapped[list[CaseEvent]] = relationship(order_by="CaseEvent.id", viewonly=True)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's API


class CaseEvent(Base):
    """One line of the timeline: who did what, from which state to which, and why."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(TS)
    action: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(80))
    from_state: Mapped[str | None] = mapped_column(String(24), nullable=True)
    to_state: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(Text, default="{}")


class CasePause(Base):
    """A correction (补正) or an Art. 45 suspension: the clocks do not count its working days."""

    __tablename__ = "case_pauses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    expected_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class CalendarOverride(Base):
    """An official working-day ruling an admin loaded (for years chinesecalendar does not know)."""

    __tablename__ = "calendar_overrides"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    workday: Mapped[bool] = mapped_column(Boolean)
    year: Mapped[int] = mapped_column(Integer, index=True)


class CalendarYear(Base):
    """A year whose official calendar an admin loaded completely (its deadlines are no longer provisional)."""

    __tablename__ = "calendar_years"
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    loaded_at: Mapped[datetime] = mapped_column(TS)
    loaded_by: Mapped[str] = mapped_column(String(80))


class SupervisionWarning(Base):
    """The 电子监察 ledger: yellow / red per case and step, and process anomalies; each raised once."""

    __tablename__ = "supervision_warnings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    case_no: Mapped[str] = mapped_column(String(21))
    department: Mapped[str] = mapped_column(String(40), index=True)
    step: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(10))  # yellow | red | anomaly
    due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    raised_at: Mapped[datetime] = mapped_column(TS)
    detail: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (UniqueConstraint("case_id", "step", "level", name="uq_supervision_warnings_case_step_level"),)


class Blob(Base):
    """An uploaded material file; the bytes live in the blob store under ``id``."""

    __tablename__ = "blobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(40), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)


class Notification(Base):
    """A message to the applicant (SMS or WeChat template). Written in the transaction of the step it
    reports, so it is never lost; ``notifications.NotificationDispatcher`` sends it from here through
    the gateway adapter, the way the outbox relay publishes events.

    ``attempts`` counts the sends tried (a claim counts, so a row that crashes the sender is not tried
    for ever); ``next_attempt_at`` is when the row may be claimed again: the retry after a failure, or
    the end of the claim of the sender that has it now (a crashed sender's rows come back then);
    ``last_error`` is the last failure (masked), kept after a later success; a row left with
    ``attempts`` at the maximum and ``sent_at`` empty was given up and stays visible with its error.
    """

    __tablename__ = "notifications"
    # The dispatcher's queue: unsent rows in id order, without walking the (mostly sent) rest.
    # (Before the columns: below, ``text`` is the message column, not sqlalchemy.text.)
    __table_args__ = (
        Index("ix_notifications_unsent", "id", postgresql_where=text("sent_at IS NULL"),
              sqlite_where=text("sent_at IS NULL")),
    )  # fmt: skip
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(40), index=True)
    phone: Mapped[str | None] = mapped_column(String(11), nullable=True)  # the mobile an SMS goes to
    channel: Mapped[str] = mapped_column(String(10))  # sms | wechat
    template: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS)
    sent_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    gateway_message_id: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Evaluation(Base):
    """好差评: one rating per case after completion; the two lowest open a rectification."""

    __tablename__ = "evaluations"
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    department: Mapped[str] = mapped_column(String(40), index=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    rectification_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    rectification_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    rectified_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class CaseBranch(Base):
    """并联审批: one branch per parallel department, with its own decision and deadline."""

    __tablename__ = "case_branches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    department: Mapped[str] = mapped_column(String(40), index=True)
    state: Mapped[str] = mapped_column(String(12))  # pending | approved | denied | cancelled
    version: Mapped[int] = mapped_column(Integer)
    started_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    deadline: Mapped[str] = mapped_column(Text, default="{}")  # Deadline as JSON
    decided_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    __table_args__ = (UniqueConstraint("case_id", "department", name="uq_case_branches_case_department"),)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's API


class CaseLicence(Base):
    """The e-licence issued for a case (``licence.licence.issued`` with its case_no): recorded once
    per licence identifier, whatever the redeliveries; only what identifies it, no licence data."""

    __tablename__ = "case_licences"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    identifier: Mapped[str] = mapped_column(String(128), unique=True)  # GB/T 36904 电子证照标识
    number: Mapped[str] = mapped_column(String(64))  # 证照编号
    licence_type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    issued_on: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)  # None: 长期
    recorded_at: Mapped[datetime] = mapped_column(TS)


class CaseShipment(Base):
    """An EMS shipment of the case: ``deliver`` (the result to the applicant) or ``collect`` (a pickup
    of the originals, 上门收件). A pickup row is written when the applicant asks (``pickup_id`` and the
    pickup fields) and learns its ``shipment_id`` from express's first event; a deliver row is written
    by express's first event. ``status`` is express's canonical status (``requested``: a pickup express
    has not reported yet) reached at ``updated_at`` (the carrier's event time); ``notified`` lists the
    statuses the applicant was told of, so each is told once."""

    __tablename__ = "case_shipments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # deliver | collect
    shipment_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    pickup_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    carrier: Mapped[str | None] = mapped_column(String(20), nullable=True)
    waybill: Mapped[str | None] = mapped_column(String(20), nullable=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)  # of the last failure
    updated_at: Mapped[datetime] = mapped_column(TS)
    recorded_at: Mapped[datetime] = mapped_column(TS)
    notified: Mapped[str] = mapped_column(String(200), default="")
    # a pickup's request (collect rows asked for through caseflow)
    idempotency_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    requested_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    sender: Mapped[str | None] = mapped_column(String(50), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(11), nullable=True)
    division_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    items: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list of material names
    __table_args__ = (UniqueConstraint("case_id", "idempotency_key", name="uq_case_shipments_case_idempotency_key"),)


class QueryCodeAttempt(Base):
    """Tries at a case number's query code in the current window (cases/query_codes.py): shared by
    replicas; keyed by the case number as asked, so unknown numbers are limited the same way."""

    __tablename__ = "query_code_attempts"
    case_no: Mapped[str] = mapped_column(String(21), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(TS)
    attempts: Mapped[int] = mapped_column(Integer)


class CaseFees(Base):
    """What a case owes (网上缴费, ADR 0026): the guide's items in fen (or an officer's assessment,
    ``revision`` +1 each), and what payment reported: the order paid with its e-receipt, the refund."""

    __tablename__ = "case_fees"
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    items: Mapped[str] = mapped_column(Text)  # JSON [{item, amount_fen, basis}]
    total_fen: Mapped[int] = mapped_column(BigInteger)
    revision: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), index=True)  # due | paid | refunded | waived
    due_before: Mapped[str] = mapped_column(String(12))
    refund_on: Mapped[str] = mapped_column(String(60))  # JSON list of outcomes
    assessed_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    receipt_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    paid_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    paid_items: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON, as payment charged them
    paid_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    refunded_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    refunded_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(TS)


class CaseInstant(Base):
    """秒批: the instant rules' verdict on a case (cases/instant.py) — which rule decided on which
    facts, or which conditions failed — whether it waits for payment, and the human review of a
    sampled automatic decision (docs/adr/0027-instant-approval-and-zero-fill.md)."""

    __tablename__ = "case_instant"
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    case_no: Mapped[str] = mapped_column(String(21))
    department: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12))  # approved | pending | referred | lapsed
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    verdict: Mapped[str] = mapped_column(Text)  # JSON: every rule's outcome, the facts shown masked
    evaluated_at: Mapped[datetime] = mapped_column(TS)
    decided_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    sampled: Mapped[bool] = mapped_column(Boolean, default=False)
    review: Mapped[str | None] = mapped_column(String(10), nullable=True)  # agree | disagree
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    __table_args__ = (Index("ix_case_instant_department_sampled", "department", "sampled"),)


outbox = Outbox(make_outbox_table(Base.metadata))
inbox = make_inbox_table(Base.metadata)
metadata = Base.metadata
