"""The difference between two guide documents, as field paths with old and new values."""

from __future__ import annotations

from typing import Any

# Lists of objects are matched by these keys, so inserting a material does not show every later
# material as changed.
IDENTITY_KEYS = ("name", "question", "item")


def _unique(items: list[Any], key: str) -> bool:
    values = [i.get(key) for i in items]
    return all(isinstance(v, str) for v in values) and len(set(values)) == len(values)


def _key_of(old: list[Any], new: list[Any]) -> str | None:
    """The key that names every entry of both lists uniquely, if there is one."""
    if not (old or new) or not all(isinstance(i, dict) for i in old + new):
        return None
    for key in IDENTITY_KEYS:
        if _unique(old, key) and _unique(new, key):
            return key
    return None


def diff(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """Every changed leaf: ``[{"path": "materials[居民身份证].count", "old": 1, "new": 2}, ...]``.

    Dicts compare key by key; lists of named objects by name (plus ``path[]`` when their order
    changed); other lists as whole values. An added or removed entry appears once, with ``old``
    or ``new`` None.
    """
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[dict[str, Any]] = []
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else str(key)
            changes.extend(diff(old.get(key), new.get(key), sub))
        return changes
    if isinstance(old, list) and isinstance(new, list):
        key = _key_of(old, new)
        if key is not None:
            before = {i[key]: i for i in old}
            after = {i[key]: i for i in new}
            changes = []
            for name in list(before) + [n for n in after if n not in before]:
                changes.extend(diff(before.get(name), after.get(name), f"{path}[{name}]"))
            if [i[key] for i in old if i[key] in after] != [i[key] for i in new if i[key] in before]:
                changes.append({"path": f"{path}[]", "old": [i[key] for i in old], "new": [i[key] for i in new]})
            return changes
    return [{"path": path, "old": old, "new": new}]
