"""Cross-field rules of 秒批 (instant rules), 零填报 (prefill), channels and payment in a guide.

The shapes are checked by ``guide``; here what one part of a guide says about another: a rule's
``form.<field>`` must be a field of the matter's form, a number comparison must test a number
(a fact that is one, or a number field), an enterprise-only fact must suit the audience, a
payment policy needs fees (or officers who assess them). Every problem names its field.
"""

from __future__ import annotations

from services.catalog.domain.guide import Guide

Gap = dict[str, str]

NUMBER_FACTS = ("applicant.level", "applicant.age")
ORDER_OPS = ("lt", "le", "gt", "ge")


def _gap(field: str, rule: str, message: str) -> Gap:
    return {"field": field, "rule": rule, "message": message}


def _is_number_fact(fact: str, number_fields: set[str]) -> bool:
    if fact in NUMBER_FACTS or fact.endswith(".days_left"):
        return True
    return fact.startswith("form.") and fact.removeprefix("form.") in number_fields


def reference_errors(guide: Guide) -> list[Gap]:
    """Everything an instant rule, a prefill, the channels or the payment policy refers to that
    the guide does not have; empty when consistent."""
    gaps: list[Gap] = []
    fields = {f.name: f for f in guide.form_fields}
    number_fields = {name for name, f in fields.items() if f.kind == "number"}
    if len(set(guide.channels)) != len(guide.channels):
        gaps.append(_gap("channels", "unique", "a channel is listed twice"))
    if guide.payment is not None:
        if not guide.fees and not guide.payment.assessed:
            gaps.append(_gap("payment", "fees_required", "a payment policy needs fees in the guide (or assessed fees)"))
        if len(set(guide.payment.refund_on)) != len(guide.payment.refund_on):
            gaps.append(_gap("payment.refund_on", "unique", "an outcome is listed twice"))
    if guide.instant is not None:
        if guide.parallel_departments:
            gaps.append(
                _gap("instant", "no_parallel", "the platform cannot decide for parallel departments (并联审批)")
            )
        ids = [rule.id for rule in guide.instant.rules]
        if len(set(ids)) != len(ids):
            gaps.append(_gap("instant.rules", "unique_ids", "two rules have the same id"))
        for r, rule in enumerate(guide.instant.rules):
            for c, condition in enumerate(rule.conditions):
                where = f"instant.rules.{r}.conditions.{c}"
                fact = condition.fact
                if fact.startswith("form.") and fact.removeprefix("form.") not in fields:
                    gaps.append(_gap(f"{where}.fact", "form_field", f"{fact}: the form has no such field"))
                    continue
                if condition.op in ORDER_OPS and not _is_number_fact(fact, number_fields):
                    gaps.append(
                        _gap(f"{where}.op", "number_fact", f"{fact} is not a number: {condition.op} cannot test it")
                    )
                if fact == "applicant.age" and guide.audience == ["enterprise"]:
                    gaps.append(_gap(f"{where}.fact", "audience", "an enterprise has no age"))
                if (
                    fact == "applicant.kind"
                    and condition.op == "eq"
                    and condition.value not in ("person", "enterprise")
                ):
                    gaps.append(_gap(f"{where}.value", "kind", "an applicant is a person or an enterprise"))
    for index, field in enumerate(guide.form_fields):
        if field.prefill is not None and field.prefill.startswith("applicant.subject") and field.kind != "subject_id":
            gaps.append(
                _gap(f"form_fields.{index}.prefill", "subject_field", "only a subject_id field takes the subject")
            )
    return gaps
