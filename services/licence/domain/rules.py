"""Rules of issuing a licence — pure: validity, numbers, the data printed on it.

- Validity: a type is valid for N years (食品经营许可证: 5) or without a time limit (营业执照:
  长期). N years from the issue date end the day before the same date N years on (2026-11-02 →
  2031-11-01); from 29 February, the day before 1 March.
- Numbers (证照编号): a business licence held by an enterprise carries its unified social credit
  code (三证合一: the credit code IS the registration number); every other licence gets
  ``<issuer division code><year><serial, 7 digits>`` from a per-issuer, per-year serial
  (3714002026 0000001), so numbers are unique per issuer and readable.
- Data: the type's ``data_schema`` (JSON Schema, draft 2020-12) names the fields printed on the
  licence; from a case's form only those fields are taken; every licence's data is checked
  against the schema wherever it comes from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, Final

from jsonschema import Draft202012Validator

from kit.text import text_problem

NUMBER_BY_SERIAL: Final = "serial"
NUMBER_BY_HOLDER_CODE: Final = "holder_code"  # the enterprise holder's credit code (营业执照)
NUMBER_RULES: Final = (NUMBER_BY_SERIAL, NUMBER_BY_HOLDER_CODE)
SERIAL_DIGITS: Final = 7


def valid_until(issued_on: date, validity_years: int | None) -> date | None:
    """The last day a licence issued on ``issued_on`` is valid; None for no time limit."""
    if validity_years is None:
        return None
    year = issued_on.year + validity_years
    try:
        same_day = issued_on.replace(year=year)
    except ValueError:  # 29 February into a common year
        same_day = date(year, 3, 1)
    return same_day - timedelta(days=1)


def licence_number(*, rule: str, holder: str, holder_kind: str, division_code: str, year: int, serial: int) -> str:
    """The number printed on the licence (see the module's rules)."""
    if rule == NUMBER_BY_HOLDER_CODE and holder_kind == "enterprise":
        return holder
    if serial < 1 or serial >= 10**SERIAL_DIGITS:
        raise ValueError(f"serial {serial} out of range for {SERIAL_DIGITS} digits")
    return f"{division_code}{year:04d}{serial:0{SERIAL_DIGITS}d}"


def schema_fields(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """The data fields a type's schema names (its top-level properties)."""
    return tuple((schema.get("properties") or {}).keys())


def pick_data(schema: Mapping[str, Any], form: Mapping[str, Any] | None) -> dict[str, Any]:
    """The licence data taken from a case's form: only the fields the schema names, no others."""
    form = form or {}
    return {name: form[name] for name in schema_fields(schema) if name in form and form[name] is not None}


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    import json

    return Draft202012Validator(json.loads(schema_json))


_OBJECT_KEYWORDS: Final = frozenset({"$schema", "type", "properties", "required", "additionalProperties"})
_VALUE_KEYWORDS: Final = frozenset(
    {"type", "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
     "exclusiveMaximum"}
)  # fmt: skip


def _value_check(schema: Any) -> Callable[[Any], bool] | None:
    """A predicate that is True only where jsonschema finds no error; None for a schema it does not cover."""
    if (
        not isinstance(schema, dict)
        or not set(schema) <= _VALUE_KEYWORDS
        or schema.get("type") not in {"string", "number"}
    ):
        return None
    bounds = [(schema.get(k), op) for k, op in (("minimum", "ge"), ("maximum", "le"), ("exclusiveMinimum", "gt"),
                                                 ("exclusiveMaximum", "lt")) if k in schema]  # fmt: skip
    if any(not isinstance(limit, int | float) or isinstance(limit, bool) for limit, _ in bounds):
        return None
    if schema["type"] == "string":
        if bounds:
            return None
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
        # "format" is an annotation for Draft202012Validator without a format checker (as here).
        return lambda value: (
            isinstance(value, str) and low <= len(value) and (high is None or len(value) <= high)
            and (pattern is None or pattern.search(value) is not None)
        )  # fmt: skip
    if {"minLength", "maxLength", "pattern", "format"} & set(schema):
        return None
    compare = {"ge": lambda v, lim: v >= lim, "le": lambda v, lim: v <= lim, "gt": lambda v, lim: v > lim,
               "lt": lambda v, lim: v < lim}  # fmt: skip
    return lambda value: (
        isinstance(value, int | float) and not isinstance(value, bool)
        and all(compare[op](value, limit) for limit, op in bounds)
    )  # fmt: skip


@lru_cache(maxsize=256)
def _fast_check(schema_json: str) -> Callable[[Any], bool] | None:
    """For the flat schemas of the licence catalogue (an object of strings and numbers): a check
    that says "conforms" only where jsonschema would find nothing, at a tenth of its cost (an import
    checks every row). Anything it does not say yes to goes to jsonschema, which names the errors;
    None for a schema using more of JSON Schema than this covers."""
    import json

    schema = json.loads(schema_json)
    if not isinstance(schema, dict) or not set(schema) <= _OBJECT_KEYWORDS or schema.get("type") != "object":
        return None
    properties, required = schema.get("properties", {}), schema.get("required", [])
    closed = schema.get("additionalProperties", True)
    if not isinstance(properties, dict) or not isinstance(required, list) or closed not in (True, False):
        return None
    checks = {name: _value_check(sub) for name, sub in properties.items()}
    if any(check is None for check in checks.values()):
        return None

    def conforms(data: Any) -> bool:
        if not isinstance(data, dict) or any(name not in data for name in required):
            return False
        for name, value in data.items():
            check = checks.get(name)
            if check is None:
                if closed is False:
                    return False
            elif not check(value):
                return False
        return True

    return conforms


def data_errors(schema_json: str, data: Any) -> list[tuple[str, str, str]]:
    """(field, rule, message) for each way ``data`` breaks the schema (given as its JSON text, so
    the compiled validator is cached per type); empty when it conforms. Fields are dotted paths
    under ``data``; the rule is the JSON Schema keyword that failed (required, type, maxLength…)."""
    # What is printed on a licence is one line of plain text: no controls, no direction overrides.
    unsafe = []
    for key, value in data.items() if isinstance(data, dict) else ():
        problem = text_problem(value, multiline=False) if isinstance(value, str) else None
        if problem is not None:
            unsafe.append((f"data.{key}", problem[0], problem[1]))
    fast = _fast_check(schema_json)
    if fast is not None and not unsafe and fast(data):
        return []
    errors = []
    for error in sorted(_validator(schema_json).iter_errors(data), key=lambda e: list(e.absolute_path)):
        path = [str(part) for part in error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = next((name for name in error.validator_value if name not in error.instance), None)
            if missing is not None:
                path.append(str(missing))
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set((error.schema or {}).get("properties", {}))
            for key in sorted(k for k in error.instance if k not in allowed):
                errors.append(
                    (".".join(["data", *path, str(key)]), "known_field", f"{key} is not a field of this type")
                )
            continue
        errors.append((".".join(["data", *path]), str(error.validator), error.message[:300]))
    return errors + unsafe
