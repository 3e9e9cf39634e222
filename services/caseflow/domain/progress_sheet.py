"""The 办件进度单 (receipt and progress sheet) an applicant prints for her own case — pure.

Caseflow produces no certificate of its own (a licence is the licence service's sealed PDF); what a
kiosk or the applicant prints here is an honest statement of the case as the platform records it:
number, matter, department, state, the dates so far, when and where it was printed, and a QR code
of the public progress URL (case number and query code, J7). It is not sealed: it proves nothing
beyond what the progress page answers to whoever scans it.

Chinese text uses reportlab's built-in CID font STSong-Light (the viewer supplies the glyphs), as
the licence's PDF does. The QR code is embedded as a bitmap image (segno), so a decoder reads it
back from the PDF's own bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote, urlencode

import segno
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

STATE_NAMES = {
    "submitted": "已提交，待受理",
    "correction_requested": "待补正",
    "resubmitted": "已补正，待受理",
    "accepted": "已受理",
    "reviewed": "已审查",
    "suspended": "中止（依法暂停计时）",
    "approved": "准予许可",
    "delivering": "送达中",
    "completed": "已办结",
    "rejected": "不予受理",
    "denied": "不予许可",
    "withdrawn": "已撤回",
}
CHANNEL_NAMES = {"online": "网上", "counter": "窗口", "kiosk": "自助终端", "department": "部门系统"}


@dataclass(frozen=True, slots=True)
class ProgressSheet:
    case_no: str
    matter: str
    department: str
    applicant: str  # already masked
    state: str
    received_on: date
    accepted_on: date | None
    due_on: date | None
    decided_on: date | None
    completed_on: date | None
    printed_at: datetime  # local time
    channel: str
    device: str | None
    progress_url: str


def progress_url(base: str, case_no: str, query_code: str) -> str:
    """The public progress page of one case: ``{base}/{case_no}?code={query_code}``."""
    return f"{base.rstrip('/')}/{quote(case_no, safe='')}?{urlencode({'code': query_code})}"


def qr_image(text: str, *, scale: int = 8) -> Image.Image:
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    buffer.seek(0)
    return Image.open(buffer).convert("L")


def _day(value: date | None) -> str:
    return value.isoformat() if value else "—"


def render_progress_sheet(sheet: ProgressSheet) -> bytes:
    """A one-page portrait A4 办件进度单 with the case's facts and the QR code of its progress page."""
    buffer = io.BytesIO()
    width, height = A4
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    title = "办件受理回执 / 进度单"
    pdf.setTitle(f"{title} {sheet.case_no}")
    pdf.setAuthor(sheet.department)
    pdf.setFont(FONT, 22)
    pdf.drawCentredString(width / 2, height - 72, title)
    where = CHANNEL_NAMES.get(sheet.channel, sheet.channel) + (f" {sheet.device}" if sheet.device else "")
    rows = [
        ("办件编号", sheet.case_no),
        ("事项名称", sheet.matter),
        ("办理部门", sheet.department),
        ("申请人", sheet.applicant),
        ("当前状态", STATE_NAMES.get(sheet.state, sheet.state)),
        ("收件日期", _day(sheet.received_on)),
        ("受理日期", _day(sheet.accepted_on)),
        ("承诺办结", _day(sheet.due_on)),
        ("决定日期", _day(sheet.decided_on)),
        ("办结日期", _day(sheet.completed_on)),
        ("打印时间", sheet.printed_at.strftime("%Y-%m-%d %H:%M")),
        ("打印渠道", where),
    ]
    y = height - 130
    for label, value in rows:
        pdf.setFont(FONT, 12)
        pdf.drawString(72, y, f"{label}：")
        pdf.drawString(160, y, value[:60])
        y -= 24
    size = 150
    pdf.drawImage(ImageReader(qr_image(sheet.progress_url)), width - 72 - size, 110, size, size)
    pdf.setFont(FONT, 9)
    pdf.drawString(72, 96, "扫码查询办件进度。本单据依平台记录打印，不作为许可证件，不加盖印章。")
    pdf.drawString(72, 82, sheet.progress_url[:110])
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
