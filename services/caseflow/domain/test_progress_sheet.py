"""The printed 办件进度单: a real PDF whose facts are the case's and whose QR code — read back out
of the PDF's own image by a real decoder (zxing-cpp) — is the public progress URL."""

from __future__ import annotations

import io
from datetime import date, datetime
from urllib.parse import parse_qs, urlsplit

import zxingcpp
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader

from services.caseflow.domain.progress_sheet import ProgressSheet, progress_url, render_progress_sheet


def qr_texts(document: bytes) -> list[str]:
    """Every QR code in the PDF's first page's images, decoded."""
    page = PdfFileReader(io.BytesIO(document)).root["/Pages"]["/Kids"][0]
    texts = []
    for image in page["/Resources"]["/XObject"].values():
        stream = image.get_object()
        if stream.get("/Subtype") != "/Image":
            continue
        assert stream["/ColorSpace"] == "/DeviceGray"
        bitmap = Image.frombytes("L", (int(stream["/Width"]), int(stream["/Height"])), stream.data)
        texts += [found.text for found in zxingcpp.read_barcodes(bitmap)]
    return texts


def sheet(**changes) -> ProgressSheet:
    values = dict(
        case_no="371402-20261201-0007", matter="居民身份证换领", department="GAJ", applicant="赵*", state="accepted",
        received_on=date(2026, 12, 1), accepted_on=date(2026, 12, 1), due_on=date(2026, 12, 15), decided_on=None,
        completed_on=None, printed_at=datetime(2026, 12, 1, 21, 30), channel="kiosk", device="KIOSK-371402-01",
        progress_url=progress_url("https://zwfw.example.gov.cn/progress", "371402-20261201-0007", "AB12CD34"),
    )  # fmt: skip
    values.update(changes)
    return ProgressSheet(**values)


def test_the_qr_code_read_back_from_the_pdf_is_the_progress_url():
    document = render_progress_sheet(sheet())
    assert document.startswith(b"%PDF")
    [text] = qr_texts(document)
    parts = urlsplit(text)
    assert parts.path == "/progress/371402-20261201-0007" and parse_qs(parts.query) == {"code": ["AB12CD34"]}
    other = render_progress_sheet(sheet(progress_url=progress_url("https://h/p/", "371402-20261201-0008", "ZZ99")))
    assert qr_texts(other) == ["https://h/p/371402-20261201-0008?code=ZZ99"]


def test_the_url_escapes_what_it_is_given():
    assert progress_url("https://h/p", "a/b", "c&d=e") == "https://h/p/a%2Fb?code=c%26d%3De"


def test_the_sheet_uses_the_builtin_chinese_font_and_names_the_case():
    document = render_progress_sheet(sheet())
    assert b"STSong-Light" in document
    info = PdfFileReader(io.BytesIO(document)).trailer["/Info"]
    assert "371402-20261201-0007" in str(info["/Title"])  # the document's title names the case
