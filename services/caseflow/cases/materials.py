"""Reading a case's uploaded material back: for those entitled (domain/access.py
``case.read_material``; a branch department only the materials its own matters ask for), with the
type sniffed from the bytes, never guessed by the browser, always as a download; every officer's
read is a line on the case's timeline."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.errors import Problem
from services.caseflow import steps
from services.caseflow.blobs import BlobStore, sniff
from services.caseflow.cases.access import authorize
from services.caseflow.cases.common import Context, dumps, matter_of_case
from services.caseflow.domain import access
from services.caseflow.domain.application import material_departments
from services.caseflow.matters import get_matter
from services.caseflow.models import Blob

EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf", "image/heic": ".heic"}
_UNSAFE_IN_NAME = re.compile(
    r'[\x00-\x1f\x7f-\x9f"\\/;:*?<>|\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]'
)
BLOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Download:
    """A material's bytes and the headers that make it a safe download."""

    content: bytes
    content_type: str
    headers: dict[str, str]


def _no_material() -> Problem:
    return Problem(404, "not-found", "Not found", "no such material of this case")


def content_disposition(name: str, content_type: str) -> str:
    """``attachment`` with an ASCII fallback and the real (e.g. Chinese) name as RFC 6266/5987
    ``filename*``; characters that could end the header or the parameter are removed first."""
    extension = EXTENSIONS.get(content_type, "")
    cleaned = _UNSAFE_IN_NAME.sub("", name).strip()[:100] or "material"
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", cleaned).strip("_") or "material"
    return f"attachment; filename=\"{ascii_name}{extension}\"; filename*=UTF-8''{quote(cleaned + extension, safe='')}"


async def _members(session: AsyncSession, case_bundle: str | None) -> list[dict[str, Any]]:
    """A bundle case's pinned member matters (which department asks for which material)."""
    if not case_bundle:
        return []
    pinned = json.loads(case_bundle)["matters"]
    found = [await get_matter(session, m["code"], m["version"], include_retired=True) for m in pinned]
    return [m.definition for m in found if m is not None]


async def download(
    session: AsyncSession, ctx: Context, store: BlobStore, principal: Principal, case_no: str, blob_id: str
) -> Download:
    """The material ``blob_id`` of the case, if the caller may read it; 404 for anyone else."""
    allowed = await authorize(session, principal, "case.read_material", case_no)
    case = allowed.case
    if not BLOB_ID.fullmatch(blob_id):
        raise _no_material()
    material = next((m for m in json.loads(case.materials) if m.get("blob_id") == blob_id), None)
    if material is None:
        raise _no_material()
    if allowed.relation == access.BRANCH_OFFICER:
        matter = await matter_of_case(session, case)
        asked = material_departments(material["name"], matter=matter, members=await _members(session, case.bundle))
        if principal.department not in asked:
            raise _no_material()
    blob = await session.get(Blob, blob_id)
    if blob is None:
        raise _no_material()
    try:
        content = await store.get(blob.id)
    except KeyError:
        raise _no_material() from None
    content_type = sniff(content) or "application/octet-stream"
    if principal.kind == "officer":  # who read which material, on the case's own record
        note = dumps({"material": material["name"], "blob_id": blob_id, "department": principal.department})
        entry = steps.line(case, ctx.current_time(), "material_read", principal.subject, case.state, case.state, note)
        await steps.write(session, case, steps.Step(entry))
    headers = {
        "Content-Disposition": content_disposition(material["name"], content_type),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    return Download(content, content_type, headers)
