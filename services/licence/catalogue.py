"""The licence catalogue (证照目录): licence types, their issuing departments, the demo seed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.licence.models import Issuer, LicenceType, LicenceTypeIssuer


@dataclass(frozen=True)
class TypeInfo:
    """A licence type with its issuers, as the use cases need it (plain data, no session)."""

    code: str
    name: str
    national_type_code: str
    validity_years: int | None
    number_rule: str
    holder_kinds: tuple[str, ...]
    data_schema_json: str
    satisfies: tuple[str, ...]
    issuers: tuple[str, ...]
    default_issuer: str | None

    @property
    def data_schema(self) -> dict[str, Any]:
        return json.loads(self.data_schema_json)

    def public(self, issuer_rows: dict[str, Issuer]) -> dict[str, Any]:
        """The type as GET /types shows it."""
        return {
            "code": self.code,
            "name": self.name,
            "national_type_code": self.national_type_code,
            "validity": {"years": self.validity_years} if self.validity_years else {"years": None, "long_term": True},
            "number_rule": self.number_rule,
            "holder_kinds": list(self.holder_kinds),
            "issuers": [
                {
                    "department": code,
                    "name": issuer_rows[code].name,
                    "issuer_code": issuer_rows[code].issuer_code,
                    "division_code": issuer_rows[code].division_code,
                    "default": code == self.default_issuer,
                }
                for code in self.issuers
                if code in issuer_rows
            ],
            "data_schema": self.data_schema,
            "satisfies": list(self.satisfies),
        }


async def issuers_by_department(session: AsyncSession) -> dict[str, Issuer]:
    """Every issuing department, by department code."""
    return {row.department: row for row in (await session.execute(select(Issuer))).scalars()}


def _info(row: LicenceType, departments: list[str]) -> TypeInfo:
    issuers = sorted(departments, key=lambda d: (d != row.default_issuer, d))
    return TypeInfo(
        code=row.code,
        name=row.name,
        national_type_code=row.national_type_code,
        validity_years=row.validity_years,
        number_rule=row.number_rule,
        holder_kinds=tuple(json.loads(row.holder_kinds)),
        data_schema_json=row.data_schema,
        satisfies=tuple(json.loads(row.satisfies)),
        issuers=tuple(issuers),
        default_issuer=row.default_issuer,
    )


async def all_types(session: AsyncSession) -> dict[str, TypeInfo]:
    """Every licence type with its issuers, by code (a small table: read whole)."""
    links: dict[str, list[str]] = {}
    for type_code, department in (
        await session.execute(select(LicenceTypeIssuer.type_code, LicenceTypeIssuer.department))
    ).all():
        links.setdefault(type_code, []).append(department)
    rows = (await session.execute(select(LicenceType).order_by(LicenceType.code))).scalars()
    return {row.code: _info(row, links.get(row.code, [])) for row in rows}


async def type_info(session: AsyncSession, code: str) -> TypeInfo | None:
    """One licence type, or None (its row and its issuers only: every issue asks)."""
    row = await session.get(LicenceType, code)
    if row is None:
        return None
    departments = (
        await session.execute(select(LicenceTypeIssuer.department).where(LicenceTypeIssuer.type_code == code))
    ).scalars()
    return _info(row, list(departments))


async def list_types(session: AsyncSession) -> list[dict[str, Any]]:
    """GET /types: every type with its issuers, validity rule, data schema and materials it satisfies."""
    issuers = await issuers_by_department(session)
    return [info.public(issuers) for info in (await all_types(session)).values()]


async def upsert_catalogue(session: AsyncSession, issuers: list[dict[str, str]], types: list[dict[str, Any]]) -> int:
    """Create or update issuers and types (idempotent: seeding twice changes nothing). Returns how
    many types were new."""
    for data in issuers:
        row = await session.get(Issuer, data["department"])
        if row is None:
            session.add(Issuer(**data))
        else:
            row.name, row.issuer_code, row.division_code = data["name"], data["issuer_code"], data["division_code"]
    await session.flush()
    created = 0
    for data in types:
        fields = {
            "name": data["name"],
            "national_type_code": data["national_type_code"],
            "validity_years": data["validity_years"],
            "number_rule": data["number_rule"],
            "holder_kinds": json.dumps(data["holder_kinds"]),
            "data_schema": json.dumps(data["data_schema"], ensure_ascii=False, sort_keys=True),
            "satisfies": json.dumps(data["satisfies"], ensure_ascii=False),
            "default_issuer": data["default_issuer"],
        }
        row = await session.get(LicenceType, data["code"])
        if row is None:
            session.add(LicenceType(code=data["code"], **fields))
            created += 1
        else:
            for name, value in fields.items():
                setattr(row, name, value)
        await session.flush()
        await session.execute(delete(LicenceTypeIssuer).where(LicenceTypeIssuer.type_code == data["code"]))
        for department in data["issuers"]:
            session.add(LicenceTypeIssuer(type_code=data["code"], department=department))
        await session.flush()
    return created
