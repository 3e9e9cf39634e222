"""Bulk import through POST /imports (streamed NDJSON)."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select
from stdnum.cn import ric

from services.licence.domain.identifier import build_identifier
from services.licence.models import Licence, outbox
from services.licence.tests.conftest import COMPANY, officer

SCJGJ_CODE = "11371400MB00000190"
FOOD_TYPE = "11100000000000019F003"


def person_code(n: int) -> str:
    body = f"37140219800101{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum reads the first 17 characters


def good_row(n: int) -> dict:
    return {"licence_type": "food_business_licence", "holder": person_code(n), "holder_name": f"商户{n}",
            "issued_on": "2024-03-01", "data": {"address": f"德州市德城区{n}号"},
            "identifier": str(build_identifier(type_code=FOOD_TYPE, issuer_code=SCJGJ_CODE, serial=f"L{n:08d}"))}  # fmt: skip


BAD = {  # line → (row change, field, rule)
    7: ({"holder": "371402198001010000"}, "holder", "checksum"),
    50: ({"licence_type": "no_such"}, "licence_type", "unknown"),
    120: ({"issued_on": "2024-02-30"}, "issued_on", "date"),
    200: ({"data": {"address": 5}}, "data.address", "type"),
    333: ({"data": {}}, "data.address", "required"),
    404: (
        {"identifier": "1.2.156.3005.2.11100000000000019F003.11371400MB00000190.L0000404.001.0"},
        "identifier",
        "check",
    ),
    500: ({"licence_type": "marriage_certificate"}, "licence_type", "issuer"),
    640: ({"holder_name": "坏\x00名"}, "holder_name", "no_control_characters"),
    777: ({"valid_until": "2020-01-01"}, "valid_until", "order"),
    999: ({"colour": "red"}, "colour", "unknown_field"),
}


def ndjson(rows) -> bytes:
    return b"".join(json.dumps(row, ensure_ascii=False).encode() + b"\n" for row in rows)


def thousand_rows() -> list[dict]:
    rows = []
    for line in range(1, 1001):
        row = good_row(line)
        if line in BAD:
            row.update(BAD[line][0])
        rows.append(row)
    return rows


async def post(client, body: bytes, headers=None):
    async def chunks():
        for start in range(0, len(body), 7_000):  # streamed in pieces that cut lines
            yield body[start : start + 7_000]

    return await client.post("/imports", content=chunks(),
                             headers={"Content-Type": "application/x-ndjson", **(headers or officer("SCJGJ", "admin"))})  # fmt: skip


async def test_thousand_rows_ten_bad(licence):
    started = time.perf_counter()
    response = await post(licence, ndjson(thousand_rows()))
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["imported"] == 990 and report["rejected_count"] == 10, report["rejected"][:3]
    assert [(r["line"], r["field"], r["rule"]) for r in report["rejected"]] == [
        (line, field, rule) for line, (_, field, rule) in sorted(BAD.items())
    ]
    async with licence.app.state.sessionmaker() as session:
        count = (await session.execute(select(func.count()).select_from(Licence))).scalar_one()
        events = (await session.execute(select(func.count()).select_from(outbox.table))).scalar_one()
        one = (await session.execute(select(Licence).where(Licence.holder == person_code(1)))).scalar_one()
    assert count == 990 and events == 990
    assert (
        one.valid_until.isoformat() == "2029-02-28" and one.source == "import" and one.number.startswith("3714002024")
    )
    print(f"import: 1000 rows in {elapsed:.2f}s = {1000 / elapsed:.0f} rows/s")
    # the same file again: every good row is a duplicate, nothing new
    again = (await post(licence, ndjson(thousand_rows()))).json()
    assert again["imported"] == 0 and again["rejected_count"] == 1000
    assert {r["rule"] for r in again["rejected"] if r["line"] not in BAD} == {"duplicate"}


async def test_duplicates_inside_one_file_rows_without_identifier_and_bad_lines(licence):
    first = good_row(1)
    anonymous = {k: v for k, v in good_row(2).items() if k != "identifier"}
    enterprise = {**good_row(3), "holder": COMPANY, "holder_code_type": "001"}
    del enterprise["identifier"]
    body = ndjson([first, first]) + b"{not json\n" + b"\n" + ndjson([anonymous, enterprise]) + b"[1, 2]"
    report = (await post(licence, body)).json()
    assert report["imported"] == 3
    assert [(r["line"], r["rule"]) for r in report["rejected"]] == [(2, "duplicate"), (3, "json"), (7, "object")]


async def test_only_an_issuing_admin_imports_ndjson(licence):
    body = ndjson([good_row(1)])
    assert (await post(licence, body, officer("SCJGJ", "decider"))).status_code == 403
    assert (await post(licence, body, officer("SWJ", "admin"))).status_code == 403  # issues no licence type
    other = (await post(licence, body, officer("BDCDJ", "admin"))).json()  # issues others: the row is refused
    assert other["imported"] == 0 and other["rejected"][0]["rule"] == "issuer"
    wrong_type = await licence.post("/imports", content=body, headers={"Content-Type": "application/json",
                                                                        **officer("SCJGJ", "admin")})  # fmt: skip
    assert wrong_type.status_code == 415


async def test_one_file_imported_twice_at_once_lands_once_with_its_events(licence):
    """Small batches (several written while the next are checked) from two imports of one file at
    the same moment: each row is in exactly once, with one issued event; the other import reports
    it as a duplicate by its line."""
    import asyncio

    licence.app.state.licence.settings.import_batch_size = 40
    rows = [good_row(n) for n in range(1, 301)]
    first, second = await asyncio.gather(post(licence, ndjson(rows)), post(licence, ndjson(rows)))
    reports = [first.json(), second.json()]
    assert sum(r["imported"] for r in reports) == 300 and sum(r["rejected_count"] for r in reports) == 300
    assert {r["rule"] for report in reports for r in report["rejected"]} == {"duplicate"}
    lines = sorted(r["line"] for report in reports for r in report["rejected"])
    assert len(lines) == 300 and set(lines) <= set(range(1, 301))
    async with licence.app.state.sessionmaker() as session:
        identifiers = (await session.execute(select(Licence.identifier))).scalars().all()
        events = (await session.execute(select(outbox.table.c.payload))).scalars().all()
    assert sorted(identifiers) == sorted(row["identifier"] for row in rows)
    assert sorted(json.loads(e)["subject"] for e in events) == sorted(identifiers)
