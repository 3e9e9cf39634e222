"""Binding an enterprise (法人) to the person the enterprise registry names as its legal
representative. Pure rules over the registry's answer; no I/O."""

from __future__ import annotations

import unicodedata

from kit.errors import Problem

# Registry statuses of an enterprise that still exists and may act (存续 = existing, 在业 = in
# business, as the registers write them). 吊销 (licence revoked), 注销 (deregistered), 迁出 (moved to
# another register), 停业 (closed) and anything unknown are refused.
ACTIVE_STATUSES = frozenset({"存续", "在业", "开业", "正常"})


def same_name(a: str, b: str) -> bool:
    """Names compare after NFKC (full-width brackets and digits) and without spaces."""

    def key(value: str) -> str:
        return "".join(unicodedata.normalize("NFKC", value).split())

    return key(a) == key(b)


def check_binding(
    *, caller: str, legal_representative: str, status: str, registered_name: str, stated_name: str | None
) -> None:
    """Refuse with a problem unless ``caller`` may bind the enterprise the registry describes.

    The legal representative is checked first, so a stranger learns nothing more about the
    enterprise than that it is not theirs."""
    if caller != legal_representative:
        raise Problem(
            403,
            "not-legal-representative",
            "Not the legal representative",
            "only the legal representative recorded in the enterprise register can bind this enterprise",
        )
    if status not in ACTIVE_STATUSES:
        raise Problem(
            409,
            "enterprise-inactive",
            "Enterprise not active",
            f"the enterprise register records the status {status}; only an existing enterprise can be bound",
            registry_status=status,
        )
    if stated_name is not None and not same_name(stated_name, registered_name):
        raise Problem(
            422,
            "validation",
            "Request is not valid",
            "name: the enterprise register records another name for this code",
            errors=[
                {
                    "field": "name",
                    "rule": "registered_name",
                    "message": f"the enterprise register records this code as {registered_name}",
                }
            ],
        )
