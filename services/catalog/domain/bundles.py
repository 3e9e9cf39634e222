"""A bundle's one form and one material list: what several matters share is asked once."""

from __future__ import annotations

from typing import Any

from services.catalog.domain.guide import Guide


def material_key(material: dict[str, Any]) -> str:
    # The same e-licence type is the same paper whatever each department calls it.
    return f"licence:{material['licence_type']}" if material.get("licence_type") else f"name:{material['name']}"


def merge(guides: list[Guide]) -> dict[str, Any]:
    """Merged materials and form fields of the bundle's matters, each saying which matters need it."""
    materials: dict[str, dict[str, Any]] = {}
    fields: dict[str, dict[str, Any]] = {}
    for guide in guides:
        for material in guide.materials:
            entry = material.model_dump(mode="json")
            key = material_key(entry)
            merged = materials.get(key)
            if merged is None:
                entry["matters"] = [guide.code]
                materials[key] = entry
                continue
            merged["matters"].append(guide.code)
            merged["required"] = merged["required"] or material.required
            merged["count"] = max(merged["count"], material.count)
            merged["forms"] = sorted(set(merged["forms"]) | set(material.forms))
        for field in guide.form_fields:
            entry = field.model_dump(mode="json")
            merged = fields.get(field.name)
            if merged is None:
                entry["matters"] = [guide.code]
                fields[field.name] = entry
            else:
                merged["matters"].append(guide.code)
                merged["required"] = merged["required"] or field.required
    return {"materials": list(materials.values()), "form_fields": list(fields.values())}
