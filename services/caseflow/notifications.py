"""Telling the applicant at every step (SMS / WeChat template messages).

``message`` is the row written (by ``steps.write``) in the transaction of the step it reports. The sandbox adapter is
that table itself, readable at ``/sandbox/notifications`` in development; a real SMS or WeChat
gateway adapter would send unsent rows (``sent_at`` empty) the way the outbox relay publishes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.caseflow.models import Case, Notification

TEMPLATES = {
    "submit": "您的办件{case_no}（{matter}）已提交，查询码{query_code}。",
    "request_correction": "您的办件{case_no}需要补正材料，请一次性补齐：{items}。",
    "resubmit": "您的办件{case_no}已补正提交。",
    "accept": "您的办件{case_no}已受理。",
    "deem_accept": "您的办件{case_no}自收到材料之日起视为受理（行政许可法第三十二条）。",
    "reject": "您的办件{case_no}不予受理：{reason}。",
    "review": "您的办件{case_no}已完成审查。",
    "approve": "您的办件{case_no}已准予许可。",
    "deny": "您的办件{case_no}不予许可：{reason}。您有依法申请行政复议或者提起行政诉讼的权利。",
    "suspend": "您的办件{case_no}进入{reason}程序，预计{days}个工作日，期间不计入办理时限。",
    "resume": "您的办件{case_no}恢复办理。",
    "extend": "您的办件{case_no}办理时限延长{days}个工作日，理由：{reason}。",
    "deliver": "您的办件{case_no}办理结果已交寄。",
    "complete": "您的办件{case_no}已办结，欢迎评价。",
    "withdraw": "您的办件{case_no}已撤回。",
}


def render(action: str, case: Case, detail: dict) -> str | None:
    template = TEMPLATES.get(action)
    if template is None:
        return None
    items = "、".join(item["material"] for item in detail.get("items", []))
    return template.format(
        case_no=case.case_no,
        matter=case.matter_name,
        query_code=case.query_code,
        items=items,
        reason=detail.get("reason") or detail.get("suspension") or "",
        days=detail.get("expected_days") or detail.get("days") or "",
    )


def message(case: Case, action: str, detail: dict, at: datetime) -> dict | None:
    """The notification row telling the applicant about this step, or None when it tells nothing."""
    text = render(action, case, detail)
    if text is None:
        return None
    return {"case_id": case.id, "recipient": case.applicant, "channel": "sms", "template": action, "text": text,
            "created_at": at, "sent_at": None}  # fmt: skip


async def sandbox_messages(session: AsyncSession, *, recipient: str | None, case_no: str | None) -> list[dict]:
    query = select(Notification, Case.case_no).join(Case, Case.id == Notification.case_id)
    if recipient:
        query = query.where(Notification.recipient == recipient)
    if case_no:
        query = query.where(Case.case_no == case_no)
    rows = (await session.execute(query.order_by(Notification.id.desc()).limit(200))).all()
    return [
        {
            "case_no": number,
            "recipient": n.recipient,
            "channel": n.channel,
            "template": n.template,
            "text": n.text,
            "created_at": n.created_at.isoformat(),
        }  # fmt: skip
        for n, number in rows
    ]
