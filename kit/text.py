"""Text that is safe to store and to show to others: pydantic field types every schema uses.

Hostile text is ordinary input. A lone surrogate cannot be stored (UTF-8 cannot encode it);
control characters, and the bidirectional overrides that make "gpj.exe" read as "exe.jpg", have no
place in a name shown on a progress page. ``Line`` is one line (names, titles, codes); ``Text``
also allows line breaks and tabs (reasons, comments). Both refuse with a rule the problem names.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

from kit.errors import RuleViolation

# C0 and C1 controls, DEL; the bidi embeddings/overrides/isolates; the zero-width and BOM formats
# that hide text. Line breaks and tabs are decided per type below.
_BIDI = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
_INVISIBLE = "\u200b-\u200d\u2060\ufeff"
_ALWAYS_BAD = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}{_INVISIBLE}\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# One search for "anything text_problem(multiline=True) refuses": the cheap first test of a hot
# path (kit.bodyguard checks every string of a body); text_problem then says which rule.
UNSAFE_TEXT = re.compile(f"[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}{_INVISIBLE}\u2028\u2029]")


def text_problem(value: str, *, multiline: bool) -> tuple[str, str] | None:
    """(rule, message) for the first thing wrong with ``value``, or None when it is safe."""
    if _SURROGATE.search(value):
        return "no_surrogates", "contains a lone surrogate (not valid Unicode text)"
    match = _ALWAYS_BAD.search(value)
    if match:
        return "no_control_characters", f"contains the control or formatting character U+{ord(match.group()):04X}"
    if not multiline and ("\n" in value or "\r" in value or "\t" in value):
        return "single_line", "must be one line (no line breaks or tabs)"
    return None


def _check(multiline: bool):
    def check(value: str) -> str:
        problem = text_problem(value, multiline=multiline)
        if problem is not None:
            raise RuleViolation(*problem)
        return unicodedata.normalize("NFC", value)

    return check


def safe_line(value: str) -> str:
    """Refuse what ``Line`` refuses (for values checked outside a pydantic model)."""
    return _check(False)(value)


def safe_text(value: str) -> str:
    """Refuse what ``Text`` refuses."""
    return _check(True)(value)


Line = Annotated[str, AfterValidator(_check(False))]
Text = Annotated[str, AfterValidator(_check(True))]
# Common shapes: a person's or an organisation's name, a short reason, a long comment.
Name = Annotated[Line, Field(min_length=1, max_length=100)]
Reason = Annotated[Text, Field(max_length=2000)]
