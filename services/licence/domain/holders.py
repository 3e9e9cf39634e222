"""Holders of licences: GB/T 36903 holder code types and the checks of their codes — pure.

A holder is a natural person identified by a resident ID number (GB 11643, code type ``111``
居民身份证) or a legal person identified by a unified social credit code (GB 32100, code type
``001`` 统一社会信用代码). The codes are checked by ``kit.subject_ids``, as identity checks them (ADR 0005).
"""

from __future__ import annotations

import datetime as dt
from typing import Final, Literal

from kit.errors import RuleViolation
from kit.subject_ids import validate_id_number, validate_uscc

PERSON_CODE_TYPE: Final = "111"
ENTERPRISE_CODE_TYPE: Final = "001"
CODE_TYPES: Final = {PERSON_CODE_TYPE: "person", ENTERPRISE_CODE_TYPE: "enterprise"}
HolderKind = Literal["person", "enterprise"]


def holder_kind_of(code: str) -> HolderKind:
    """'person' when ``code`` is a valid ID number, else 'enterprise' (an all-digit credit code of
    a government organ may look like an ID number: its check character decides; where both could
    hold, the caller names the code type)."""
    try:
        validate_id_number(code)
    except RuleViolation:
        return "enterprise"
    return "person"


def code_type_for(kind: str) -> str:
    """GB/T 36903 holder code type of a holder kind."""
    return PERSON_CODE_TYPE if kind == "person" else ENTERPRISE_CODE_TYPE


def validate_holder(code: str, code_type: str | None = None, *, today: dt.date | None = None) -> tuple[str, str]:
    """(normalised code, code type) of a holder; the code type is inferred when not given.

    Raises RuleViolation: ``code_type`` for an unknown type, else the rule the code breaks."""
    if code_type is None:
        code = code or ""
        try:
            return validate_id_number(code, today=today), PERSON_CODE_TYPE
        except RuleViolation as as_person:
            try:
                return validate_uscc(code), ENTERPRISE_CODE_TYPE
            except RuleViolation:
                # Neither: say what is wrong with what it looks like (17 digits first: an ID number).
                if code[:17].isdigit():
                    raise as_person from None
                raise
    if code_type == PERSON_CODE_TYPE:
        return validate_id_number(code, today=today), code_type
    if code_type == ENTERPRISE_CODE_TYPE:
        return validate_uscc(code), code_type
    raise RuleViolation("code_type", "holder_code_type is 111 (resident ID number) or 001 (credit code)")
