"""A bundle's one form and one material list: what several matters share is asked once.

The same rule as caseflow's (services/caseflow/domain/bundles.py), so what the catalog shows is
exactly what a bundle submission demands (a test walks every seed bundle through both):

- materials by name (two departments asking for "申请人居民身份证" and "法定代表人居民身份证" ask for
  two people's cards, even though both are resident ID cards), required if any matter requires it;
- a material whose licence type an earlier matter of the bundle issues (the 营业执照 of 开办企业) is
  listed, not required, with ``produced_by``: nobody holds the licence the bundle is about to issue;
- who applies is whoever the lead matter serves: the lead is the application, the other matters
  follow from it (the seal, tax and social-security registrations of the company being founded);
- the minimum real-name level is the highest of the matters'.
"""

from __future__ import annotations

from typing import Any

from services.catalog.domain.guide import Guide


def merge(guides: list[Guide]) -> dict[str, Any]:
    """Merged materials and form fields of the bundle's matters (in bundle order, the first leads),
    each saying which matters need it; the bundle's audience and minimum level."""
    materials: dict[str, dict[str, Any]] = {}
    fields: dict[str, dict[str, Any]] = {}
    produced: dict[str, str] = {}  # licence type -> the matter whose result issues it
    for guide in guides:
        for material in guide.materials:
            entry = material.model_dump(mode="json")
            source = produced.get(material.licence_type or "")
            required = material.required and source is None
            merged = materials.get(material.name)
            if merged is None:
                entry.update(required=required, matters=[guide.code])
                if source is not None:
                    entry["produced_by"] = source
                materials[material.name] = entry
                continue
            merged["matters"].append(guide.code)
            merged["required"] = merged["required"] or required
            merged["count"] = max(merged["count"], material.count)
            merged["forms"] = sorted(set(merged["forms"]) | set(material.forms))
            if not merged.get("licence_type") and material.licence_type:
                merged["licence_type"] = material.licence_type
        for field in guide.form_fields:
            entry = field.model_dump(mode="json")
            merged = fields.get(field.name)
            if merged is None:
                entry["matters"] = [guide.code]
                fields[field.name] = entry
            else:
                merged["matters"].append(guide.code)
                merged["required"] = merged["required"] or field.required
        if guide.result is not None and guide.result.licence_type:
            produced.setdefault(guide.result.licence_type, guide.code)
    for entry in materials.values():
        if entry["required"]:
            entry.pop("produced_by", None)
    lead = guides[0] if guides else None
    return {
        "audience": list(lead.audience) if lead else [],
        "min_level": max((g.min_level or 1 for g in guides), default=1),
        "materials": list(materials.values()),
        "form_fields": list(fields.values()),
    }
