"""套餐 / 一件事: the matter a bundle case runs under — pure.

One application for several matters of several departments: the lead (the bundle's first matter)
accepts at one window, every other department decides its own branch with its own deadline
(its matters' own limits), and the case as a whole runs under joint handling (Art. 42: 45 + 15
working days for licensing). One merged form and one material list: a material or form field
several matters ask for (by name) is asked once, required if any of them requires it. A material
an earlier matter of the bundle produces (its result's licence type: the 营业执照 of 开办企业) is
listed, not required, with ``produced_by``: nobody holds the licence the bundle is about to issue.

Who applies: whoever the lead matter serves. The lead is the application; the other matters
follow from it (the seal, tax and social-security registrations of the company the founder is
creating), so their audience describes the subject after the lead is done, not the applicant.
Catalog shows bundles by the same rule (services/catalog/domain/bundles.py; a test walks every
seed bundle through both).
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


def bundle_materials(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The one material list: by name, required if any member requires it, except that a material
    whose licence type an earlier member's result issues is optional and says ``produced_by``."""
    lists: list[list[dict[str, Any]]] = []
    produced: dict[str, str] = {}  # licence type -> the member code whose result issues it
    for member in members:
        items = []
        for material in member.get("materials", []):
            item = dict(material)
            source = produced.get(item.get("licence_type") or "")
            if source is not None:
                item.update(required=False, produced_by=source)
            items.append(item)
        lists.append(items)
        issued = (member.get("result") or {}).get("licence_type")
        if issued:
            produced.setdefault(issued, member["code"])
    merged = _merged(lists)
    for item in merged:  # required somewhere the bundle does not produce it: not produced for the applicant
        if item.get("required"):
            item.pop("produced_by", None)
    return merged


def bundle_matter(bundle: dict[str, Any], members: list[dict[str, Any]]) -> dict[str, Any]:
    """The lead matter widened to the whole bundle. ``members`` are the published definitions of
    the bundle's matters in the bundle's order (the first leads)."""
    if len(members) < 2:
        raise ValueError("a bundle has at least two matters")
    lead = members[0]
    departments = [m["department"] for m in members[1:] if m["department"] != lead["department"]]
    matter = dict(lead)
    matter.update(
        materials=bundle_materials(members),
        form_fields=_merged([m.get("form_fields", []) for m in members]),
        audience=list(lead.get("audience") or ("person", "enterprise")),
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
