"""套餐 / 一件事: the matter a bundle case runs under — pure.

One application for several matters of several departments: the lead (the bundle's first matter)
accepts at one window, every other department decides its own branch with its own deadline
(its matters' own limits), and the case as a whole runs under joint handling (Art. 42: 45 + 15
working days for licensing). One merged form and one material list: a material or form field
several matters ask for is asked once, required if any of them requires it.
"""

from __future__ import annotations

from typing import Any

from services.caseflow.domain.case_clock import decision_limit


def _merged(lists: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Items by name, first occurrence first; required if any matter requires it."""
    merged: dict[str, dict[str, Any]] = {}
    for items in lists:
        for item in items:
            known = merged.get(item["name"])
            if known is None:
                merged[item["name"]] = dict(item)
                continue
            known["required"] = bool(known.get("required")) or bool(item.get("required"))
            if not known.get("licence_type") and item.get("licence_type"):
                known["licence_type"] = item["licence_type"]
    return list(merged.values())


def bundle_matter(bundle: dict[str, Any], members: list[dict[str, Any]]) -> dict[str, Any]:
    """The lead matter widened to the whole bundle. ``members`` are the published definitions of
    the bundle's matters in the bundle's order (the first leads)."""
    if len(members) < 2:
        raise ValueError("a bundle has at least two matters")
    lead = members[0]
    audiences = [set(m.get("audience") or ("person", "enterprise")) for m in members]
    departments = [m["department"] for m in members[1:] if m["department"] != lead["department"]]
    matter = dict(lead)
    matter.update(
        materials=_merged([m.get("materials", []) for m in members]),
        form_fields=_merged([m.get("form_fields", []) for m in members]),
        audience=sorted(set.intersection(*audiences)),
        min_level=max(int(m.get("min_level", 1)) for m in members),
        parallel_departments=list(dict.fromkeys(departments)),
        bundle={
            "code": bundle["code"],
            "name": bundle["name"],
            "matters": [
                {
                    "code": m["code"],
                    "version": m["version"],
                    "name": m["name"],
                    "department": m["department"],
                    "limit": list(decision_limit(m)),
                }
                for m in members
            ],  # fmt: skip
        },
    )
    return matter


def branch_limit(matter: dict[str, Any], department: str) -> tuple[int, str]:
    """A parallel department's deadline: the longest own limit of its matters in the bundle; a
    multi-department matter (no bundle) gives every branch the case's joint limit."""
    own = [tuple(m["limit"]) for m in matter.get("bundle", {}).get("matters", []) if m["department"] == department]
    if not own:
        return decision_limit(matter)
    days, rule = max(own)
    return int(days), str(rule)
