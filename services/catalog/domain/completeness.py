"""Publish-time completeness: every missing or inconsistent field, named, in one answer."""

from __future__ import annotations

from services.catalog.domain.guide import Guide

Gap = dict[str, str]  # {"field": ..., "rule": ..., "message": ...}


def _gap(field: str, rule: str, message: str) -> Gap:
    return {"field": field, "rule": rule, "message": message}


def missing_fields(guide: Guide) -> list[Gap]:
    """Everything that stops this guide from being published; empty when it is complete."""
    gaps: list[Gap] = []
    for field in ("matter_type", "level", "kind", "result", "depth", "max_visits", "online", "min_level"):
        if getattr(guide, field) is None:
            gaps.append(_gap(field, "required", "required for publishing"))
    for field in ("legal_basis", "conditions", "audience", "materials", "steps"):
        if not getattr(guide, field):
            gaps.append(_gap(field, "required", "at least one entry is required for publishing"))
    if guide.statutory_limit_days is None:
        gaps.append(_gap("statutory_limit_days", "required", "required for publishing"))
    if guide.kind == "promised" and guide.promised_limit_days is None:
        gaps.append(_gap("promised_limit_days", "required", "a promised matter needs its promised limit"))
    if (
        guide.promised_limit_days is not None
        and guide.statutory_limit_days is not None
        and guide.promised_limit_days > guide.statutory_limit_days
    ):
        gaps.append(_gap("promised_limit_days", "within_statutory", "the promised limit exceeds the statutory one"))
    for index, material in enumerate(guide.materials):
        if not material.forms:
            gaps.append(_gap(f"materials.{index}.forms", "required", f"{material.name}: original, copy or electronic"))
    for index, step in enumerate(guide.steps):
        if not step.roles:
            gaps.append(_gap(f"steps.{index}.roles", "required", f"{step.name}: which roles act in this step"))
    if guide.depth == 4 and guide.max_visits not in (None, 0):
        gaps.append(_gap("max_visits", "depth_4_no_visit", "handling depth 4 means no visit"))
    if guide.depth == 4 and guide.online is False:
        gaps.append(_gap("online", "depth_4_online", "handling depth 4 means fully online"))
    if guide.result is not None and guide.result.form == "licence" and not guide.result.licence_type:
        gaps.append(_gap("result.licence_type", "required", "a licence result names the licence type issued"))
    names = [m.name for m in guide.materials]
    if len(names) != len(set(names)):
        gaps.append(_gap("materials", "unique_names", "two materials have the same name"))
    return gaps
