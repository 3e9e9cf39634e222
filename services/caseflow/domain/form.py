"""The application form checked against the pinned matter version's form fields — pure.

``check_form(fields, form, verified_name=...)`` returns the form as stored, or raises
``FormInvalid`` listing EVERY problem at once (一次性告知), each as ``{"field": "form.<name>",
"rule": ..., "message": ...}``. Values are scalars (strings, numbers, booleans for nothing);
nested objects and arrays are refused; a key the form does not have is refused.

Formats: ``mobile`` a mainland mobile number; ``id_number`` GB 11643 and ``uscc`` GB 32100 exactly
as identity checks them (``kit.subject_ids``: re-coded counties and 港澳台 residence permits
accepted, registration-authority letters too; values are upper-cased here first); ``division_code`` a GB/T 2260 code
(six digits under a province that exists). ``subject_id`` fields take an ID number or a USCC.

The field ``applicant_name`` is filled from the verified name in the token; a value sent must be
that name (docs/adr/0011-caseflow-trust.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from kit.errors import RuleViolation
from kit.subject_ids import validate_id_number, validate_uscc
from kit.text import text_problem

DEFAULT_MAX_LENGTH = 500  # a text field without its own max_length
MAX_NUMBER = 10**15  # a number field without a range: still a number a form can mean
APPLICANT_NAME = "applicant_name"

MOBILE = re.compile(r"1[3-9]\d{9}", re.ASCII)
DIVISION = re.compile(r"\d{6}", re.ASCII)
DECIMAL = re.compile(r"-?\d{1,16}(\.\d{1,6})?", re.ASCII)
# GB/T 2260 provinces (first two digits); 71 台湾, 81 香港, 82 澳门.
PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)


class FormInvalid(Exception):
    """Every problem of a form, in the order of the form's fields (unknown keys last)."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(errors[0]["message"] if errors else "invalid form")
        self.errors = errors


def valid_id_number(value: str) -> bool:
    """GB 11643, as identity checks it (kit.subject_ids)."""
    return _holds(validate_id_number, value)


def valid_uscc(value: str) -> bool:
    """GB 32100, as identity checks it (kit.subject_ids)."""
    return _holds(validate_uscc, value)


def _holds(validate: Callable[[str], str], value: str) -> bool:
    try:
        return validate(value) == value
    except RuleViolation:
        return False


def valid_division_code(value: str) -> bool:
    """GB/T 2260: six digits under an existing province."""
    return bool(DIVISION.fullmatch(value)) and value[:2] in PROVINCES


def _format_problem(kind: str, value: str) -> str | None:
    if kind == "mobile" and not MOBILE.fullmatch(value):
        return "not a mainland mobile number (11 digits starting with 1)"
    if kind == "id_number" and not valid_id_number(value):
        return "not a valid resident identity number (GB 11643)"
    if kind == "uscc" and not valid_uscc(value):
        return "not a valid unified social credit code (GB 32100)"
    if kind == "division_code" and not valid_division_code(value):
        return "not a GB/T 2260 division code"
    return None


def _number(value: Any) -> Decimal | None:
    """A form number: an int, a finite float, or a decimal string; None if it is none of these."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and DECIMAL.fullmatch(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            return None
    return None


def _check_value(spec: dict[str, Any], value: Any) -> tuple[Any, str, str]:
    """(normalised value, rule, message) — rule empty when the value is good."""
    kind = spec.get("kind", "text")
    if isinstance(value, dict | list):
        return value, "scalar", "a form value is a single value, not an object or a list"
    if kind == "number":
        number = _number(value)
        if number is None:
            return value, "number", "must be a number"
        low = spec.get("minimum")
        high = spec.get("maximum")
        if low is not None and number < Decimal(str(low)):
            return value, "minimum", f"must be at least {low}"
        if high is not None and number > Decimal(str(high)):
            return value, "maximum", f"must be at most {high}"
        if abs(number) > MAX_NUMBER:
            return value, "maximum", f"must be at most {MAX_NUMBER} in size"
        return value, "", ""
    if not isinstance(value, str):
        return value, "string", "must be text"
    problem = text_problem(value, multiline=False)
    if problem is not None:
        return value, problem[0], problem[1]
    value = value.strip()
    limit = int(spec.get("max_length") or DEFAULT_MAX_LENGTH)
    if len(value) > limit:
        return value, "max_length", f"at most {limit} characters"
    if kind == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            return value, "date", "must be a date (YYYY-MM-DD)"
        if len(value) != 10:
            return value, "date", "must be a date (YYYY-MM-DD)"
    elif kind == "choice" and spec.get("options") is not None and value not in spec["options"]:
        return value, "choice", "must be one of: " + ", ".join(spec["options"])
    elif kind == "subject_id":
        value = value.upper()
        if not (valid_id_number(value) or valid_uscc(value)):
            return value, "subject_id", "not a valid identity number (GB 11643) or credit code (GB 32100)"
    fmt = spec.get("format")
    if fmt:
        if fmt in {"id_number", "uscc"}:
            value = value.upper()
        message = _format_problem(fmt, value)
        if message:
            return value, fmt, message
    return value, "", ""


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _safe_key(key: str) -> str:
    """A key as it may be echoed in a problem: unsafe text (a lone surrogate cannot even be encoded) is not."""
    return key if text_problem(key, multiline=False) is None and len(key) <= 64 else "?"


def check_form(fields: list[dict[str, Any]], form: dict[str, Any], *, verified_name: str | None) -> dict[str, Any]:
    """The form as stored, or ``FormInvalid`` with every problem. ``verified_name`` (the applicant's
    name from the verified token) fills ``applicant_name`` when the form has that field."""
    errors: list[dict[str, str]] = []
    stored: dict[str, Any] = {}
    known = {f["name"]: f for f in fields}
    for name, spec in known.items():
        field = f"form.{name}"
        value = form.get(name)
        if name == APPLICANT_NAME:
            if not _empty(value) and value != verified_name:
                errors.append({"field": field, "rule": "verified_name",
                               "message": "the applicant's name is the verified name of the signed-in subject"})  # fmt: skip
            elif verified_name:
                stored[name] = verified_name
            continue
        if _empty(value):
            # subject_id fields name the applicant, whom the token already names
            if spec.get("required", True) and spec.get("kind") != "subject_id":
                errors.append({"field": field, "rule": "required", "message": f"{spec.get('label', name)} is required"})
            continue
        normalised, rule, message = _check_value(spec, value)
        if rule:
            errors.append({"field": field, "rule": rule, "message": message})
        else:
            stored[name] = normalised
    for key in form:
        if key not in known:
            safe = _safe_key(key)
            errors.append({"field": f"form.{safe}", "rule": "unknown_field",
                           "message": "this matter's form has no such field"})  # fmt: skip
    if errors:
        raise FormInvalid(errors)
    return stored


def check_changes(fields: list[dict[str, Any]], stored: dict[str, Any], changes: dict[str, Any],
                  *, verified_name: str | None) -> dict[str, Any]:  # fmt: skip
    """A resubmission's changed fields merged into the stored form, the whole form checked again."""
    merged = {k: v for k, v in {**stored, **changes}.items() if k != APPLICANT_NAME}
    if APPLICANT_NAME in changes:
        merged[APPLICANT_NAME] = changes[APPLICANT_NAME]
    # The name given at submission stands when the token of the resubmission carries none.
    return check_form(fields, merged, verified_name=verified_name or stored.get(APPLICANT_NAME))
