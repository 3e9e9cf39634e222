"""Who may apply for a matter, and whether the materials fit it — pure rules of a submission.

Each refusal names its rule. A real-name level below the matter's is its own problem type
(``level-too-low``, with ``required`` and ``actual``) so that a client can send the applicant to
verification instead of showing a bare 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kit.errors import Problem


def check_applicant(*, kind: str, level: int, matter: dict[str, Any]) -> None:
    """Persons and enterprises the matter serves, at the matter's real-name level (the mandate is
    domain/access.py's question)."""
    if kind not in {"person", "enterprise"}:
        raise Problem(403, "forbidden", "Not allowed", "only persons and enterprises apply", rule="applicant_kind")
    if kind not in matter.get("audience", ["person", "enterprise"]):
        raise Problem(403, "forbidden", "Not allowed", f"this matter does not serve {kind} applicants", rule="audience")
    required = int(matter.get("min_level", 1))
    if level < required:
        raise Problem(
            403,
            "level-too-low",
            "Real-name level too low",
            f"real-name level L{required} is required (you have L{level}); verify, then sign in again",
            rule="min_level",
            required=required,
            actual=level,
        )


def offers_ems(matter: dict[str, Any]) -> bool:
    """Whether the matter's result can be sent by EMS."""
    return bool(matter.get("express")) or "express" in (matter.get("result") or {}).get("delivery", [])


@dataclass(frozen=True)
class GivenMaterial:
    """One material as the applicant gave it (the request's shape, without pydantic)."""

    name: str
    blob_id: str | None
    licence_id: str | None


def material_errors(
    matter: dict[str, Any], given: list[GivenMaterial], *, own_blobs: set[str], partial: bool
) -> list[dict[str, str]]:
    """Every problem of the materials at once (一次性告知): unknown names, an e-licence for a material
    no licence satisfies, an upload that is not the applicant's, and (unless ``partial``, as in a
    resubmission) each required material missing."""
    known = {m["name"]: m for m in matter.get("materials", [])}
    errors: list[dict[str, str]] = []
    for index, material in enumerate(given):
        spec = known.get(material.name)
        field = f"materials.{index}"
        if spec is None:
            errors.append({"field": f"{field}.name", "rule": "known_material",
                           "message": f"not a material of this matter: {material.name}"})  # fmt: skip
            continue
        if material.licence_id is not None and not spec.get("licence_type"):
            errors.append({"field": f"{field}.licence_id", "rule": "licence_type",
                           "message": f"{material.name} cannot be satisfied by an e-licence"})  # fmt: skip
        if material.blob_id is not None and material.blob_id not in own_blobs:
            errors.append({"field": f"{field}.blob_id", "rule": "exists", "message": "no such upload of yours"})
    if not partial:
        names = {m.name for m in given}
        for name, spec in known.items():
            if spec.get("required") and name not in names:
                errors.append(
                    {"field": "materials", "rule": "required", "message": f"missing required material: {name}"}
                )
    return errors


def fee_mismatch(matter: dict[str, Any], paid: str | None) -> bool:
    """电子监察 fee anomaly: what was paid differs from the fees the matter's guide lists."""
    due = sum((Decimal(fee["amount_yuan"]) for fee in matter.get("fees", [])), Decimal(0))
    return Decimal(paid or 0) != due


def material_departments(name: str, *, matter: dict[str, Any], members: list[dict[str, Any]]) -> set[str]:
    """The departments whose matters ask for the material ``name``. For a bundle, ``members`` are
    its matters' pinned definitions: the departments of those that list the material. Otherwise
    the matter's department and its parallel departments, which all decide on the one matter."""
    if not members:
        return {matter.get("department", ""), *matter.get("parallel_departments", [])}
    return {m["department"] for m in members if any(x["name"] == name for x in m.get("materials", []))}
