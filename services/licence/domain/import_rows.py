"""One row of a bulk import (NDJSON), checked on its own — pure.

A row is a JSON object::

    {"licence_type": "food_business_licence", "holder": "91350100M000100Y43", "holder_name": "…",
     "issued_on": "2024-03-01", "data": {…},
     optional: "identifier", "number", "holder_code_type" (111 | 001), "valid_from", "valid_until",
               "status" (valid | suspended | revoked)}

The first broken rule is reported as (field, rule, message); the import then leaves the row out
whole. Duplicates (an identifier already held, or twice in one file) are the importer's (I/O)
business: this module sees one row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from kit.errors import RuleViolation
from kit.text import text_problem
from services.licence.domain import rules
from services.licence.domain.errors import InvalidIdentifier
from services.licence.domain.holders import CODE_TYPES, validate_holder
from services.licence.domain.identifier import parse_identifier

FIELDS: Final = frozenset(
    {"licence_type", "holder", "holder_code_type", "holder_name", "issued_on", "valid_from", "valid_until",
     "identifier", "number", "status", "data"}
)  # fmt: skip
IMPORT_STATUSES: Final = ("valid", "suspended", "revoked")


class ImportType(Protocol):
    """What a row is checked against (the catalogue's TypeInfo has these)."""

    @property
    def national_type_code(self) -> str: ...
    @property
    def holder_kinds(self) -> tuple[str, ...]: ...
    @property
    def data_schema_json(self) -> str: ...
    @property
    def validity_years(self) -> int | None: ...
    @property
    def issuers(self) -> tuple[str, ...]: ...


class RowRejected(Exception):
    """The first rule a row breaks."""

    def __init__(self, field_: str, rule: str, message: str) -> None:
        super().__init__(f"{field_}: {message}")
        self.field = field_
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class ImportRow:
    """A row that passed every check, normalised."""

    licence_type: str
    holder: str
    holder_code_type: str
    holder_name: str
    issued_on: dt.date
    valid_from: dt.date
    valid_until: dt.date | None
    status: str
    data: dict[str, Any] = field(default_factory=dict)
    identifier: str | None = None
    number: str | None = None


def _text(row: Mapping[str, Any], name: str, *, required: bool, max_length: int) -> str | None:
    value = row.get(name)
    if value is None:
        if required:
            raise RowRejected(name, "required", "missing")
        return None
    if not isinstance(value, str):
        raise RowRejected(name, "type", "must be a string")
    problem = text_problem(value, multiline=False)
    if problem is not None:
        raise RowRejected(name, *problem)
    value = value.strip()
    if required and not value:
        raise RowRejected(name, "required", "empty")
    if len(value) > max_length:
        raise RowRejected(name, "max_length", f"at most {max_length} characters")
    return value


def _date(row: Mapping[str, Any], name: str, *, required: bool) -> dt.date | None:
    value = row.get(name)
    if value is None:
        if required:
            raise RowRejected(name, "required", "missing")
        return None
    if not isinstance(value, str) or len(value) != 10:
        raise RowRejected(name, "date", "a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise RowRejected(name, "date", "a date YYYY-MM-DD") from None


def _safe_strings(value: Any, path: str, *, depth: int) -> None:
    """Text inside ``data`` is printed on the licence: no control characters, no lone surrogates."""
    if depth > 8:
        raise RowRejected(path, "depth", "nested too deeply")
    if isinstance(value, str):
        problem = text_problem(value, multiline=True)
        if problem is not None:
            raise RowRejected(path, *problem)
    elif isinstance(value, dict):
        for key, item in value.items():
            _safe_strings(item, f"{path}.{key}", depth=depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _safe_strings(item, f"{path}.{index}", depth=depth + 1)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        raise RowRejected(path, "out_of_range", "numbers up to 64 bits")


def check_row(row: Any, *, types: Mapping[str, ImportType], department: str, issuer_code: str, division_code: str,
              today: dt.date) -> ImportRow:  # fmt: skip
    """The row normalised, or RowRejected naming the first field and rule it breaks.

    ``department`` is the importing officer's; it must issue the row's type. A given identifier
    must be valid (GB/T 36904 check character) and name this type and this issuer (by credit code
    or division code)."""
    if not isinstance(row, dict):
        raise RowRejected("row", "object", "each line is one JSON object")
    unknown = sorted(set(row) - FIELDS)
    if unknown:
        raise RowRejected(unknown[0], "unknown_field", "not a field of an imported licence")
    type_code = _text(row, "licence_type", required=True, max_length=64)
    assert type_code is not None
    info = types.get(type_code)
    if info is None:
        raise RowRejected("licence_type", "unknown", "no such licence type")
    if department not in info.issuers:
        raise RowRejected("licence_type", "issuer", "your department does not issue this licence type")
    holder = _text(row, "holder", required=True, max_length=18)
    code_type = _text(row, "holder_code_type", required=False, max_length=3)
    if code_type is not None and code_type not in CODE_TYPES:
        raise RowRejected("holder_code_type", "code_type", "111 (resident ID number) or 001 (credit code)")
    try:
        holder, code_type = validate_holder(holder or "", code_type, today=today)
    except RuleViolation as exc:
        raise RowRejected("holder", exc.rule, exc.message) from None
    if CODE_TYPES[code_type] not in info.holder_kinds:
        raise RowRejected("holder", "holder_kind", f"this licence type is not issued to a {CODE_TYPES[code_type]}")
    holder_name = _text(row, "holder_name", required=True, max_length=200)
    assert holder_name is not None
    issued_on = _date(row, "issued_on", required=True)
    assert issued_on is not None
    if issued_on > today:
        raise RowRejected("issued_on", "future", "a licence cannot be issued in the future")
    valid_from = _date(row, "valid_from", required=False) or issued_on
    valid_until = _date(row, "valid_until", required=False)
    if "valid_until" not in row:
        valid_until = rules.valid_until(valid_from, info.validity_years)
    if valid_until is not None and valid_until < valid_from:
        raise RowRejected("valid_until", "order", "ends before valid_from")
    status = _text(row, "status", required=False, max_length=12) or "valid"
    if status not in IMPORT_STATUSES:
        raise RowRejected("status", "status", "valid, suspended or revoked (expiry is the timer's)")
    identifier = _text(row, "identifier", required=False, max_length=128)
    if identifier is not None:
        try:
            parsed = parse_identifier(identifier)
        except InvalidIdentifier as exc:
            raise RowRejected("identifier", exc.rule, exc.message) from None
        if parsed.type_code != info.national_type_code:
            raise RowRejected("identifier", "type_code", "the identifier names another licence type")
        if parsed.issuer_code not in {issuer_code, division_code}:
            raise RowRejected("identifier", "issuer_code", "the identifier names another issuer")
    number = _text(row, "number", required=False, max_length=64)
    data = row.get("data", {})
    if not isinstance(data, dict):
        raise RowRejected("data", "type", "must be an object")
    _safe_strings(data, "data", depth=0)
    errors = rules.data_errors(info.data_schema_json, data)
    if errors:
        raise RowRejected(*errors[0])
    return ImportRow(
        licence_type=type_code, holder=holder, holder_code_type=code_type, holder_name=holder_name,
        issued_on=issued_on, valid_from=valid_from, valid_until=valid_until, status=status, data=data,
        identifier=identifier, number=number,
    )  # fmt: skip
