"""The normalised text a matter is found by: Chinese, full pinyin and pinyin initials.

Search is a LIKE on this one column, the same on SQLite and PostgreSQL: every query word must
occur in it. ``yyzz`` finds 营业执照 through the initials, ``yingye`` through the full pinyin.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

SEPARATOR = "|"


def normalise(text: str) -> str:
    """Full-width to half-width, lower case, no separators the column uses itself."""
    return unicodedata.normalize("NFKC", text).lower().replace(SEPARATOR, " ").strip()


@lru_cache(maxsize=65536)  # pypinyin costs ~0.1 ms a call; names repeat a lot
def pinyin_full(text: str) -> str:
    return "".join(lazy_pinyin(text, errors="ignore")).lower()


@lru_cache(maxsize=65536)
def pinyin_initials(text: str) -> str:
    return "".join(lazy_pinyin(text, style=Style.FIRST_LETTER, errors="ignore")).lower()


def search_text(*, code: str, name: str, aliases: list[str], keywords: list[str]) -> str:
    """What the search column holds for one matter."""
    names = [name, *aliases, *keywords]
    parts = [code, *names]
    parts += [pinyin_full(n) for n in names] + [pinyin_initials(n) for n in names]
    seen: list[str] = []
    for part in (normalise(p) for p in parts):
        if part and part not in seen:
            seen.append(part)
    return SEPARATOR + SEPARATOR.join(seen) + SEPARATOR


def query_words(q: str) -> list[str]:
    """The words of a query; each must occur (substring) in the search column."""
    return [w for w in normalise(q).split() if w][:8]


def escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
