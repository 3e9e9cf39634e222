"""EMS shipments of a case as caseflow keeps them — pure (docs/adr/0018-caseflow-delivery.md).

Express owns the tracking rules (its status never moves backwards); caseflow only mirrors what it is
told, and events may reach it out of order (several subjects, redeliveries, replicas). So:

- ``moves``: an event changes the stored status only if it is not older than the stored one (the
  carrier's event time orders them) and the shipment is not final yet; an older event is still a
  line on the timeline.
- ``notice``: what the applicant is told of a ``deliver`` shipment, once per kind of notice
  (``notified`` keeps those sent): dispatched (已交寄, with the waybill: the first status short of
  out for delivery that carries one), out for delivery (派送中), signed for (已签收). Only an event
  that moved the status tells anything (a late "in transit" after "out for delivery" says nothing).
- ``is_stuck``: still ``created`` (the carrier never picked it up) ``hours`` after it was ordered.
- ``original_materials``: the matter's materials asked for in original form — what a pickup collects.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

FINAL_STATUSES = frozenset({"signed_for", "returned"})
REQUESTED = "requested"  # a pickup caseflow asked for that express has not reported yet
BEFORE_DELIVERY = frozenset({"created", "picked_up", "in_transit"})
NOTICES = ("dispatched", "out_for_delivery", "signed_for")


def moves(*, current: str, final: bool, current_at: datetime, status: str, at: datetime) -> bool:
    """Whether an event reporting ``status`` at ``at`` replaces the stored ``current`` status."""
    if final or current in FINAL_STATUSES:
        return False
    return current == REQUESTED or at >= current_at


def notice(*, kind: str, status: str, waybill: str | None, notified: Iterable[str]) -> str | None:
    """The notice an event that moved a shipment to ``status`` gives the applicant, if any (once each)."""
    if kind != "deliver":
        return None
    wanted = (
        "dispatched"
        if status in BEFORE_DELIVERY and waybill
        else status
        if status in {"out_for_delivery", "signed_for"}
        else None
    )
    return wanted if wanted is not None and wanted not in set(notified) else None


def notified_list(value: str) -> list[str]:
    """The stored ``notified`` column as a list."""
    return [item for item in value.split(",") if item]


def is_stuck(*, status: str, final: bool, ordered_at: datetime, now: datetime, hours: float) -> bool:
    """Still waiting for the carrier to pick it up, ``hours`` after it was ordered."""
    return status == "created" and not final and now - ordered_at >= timedelta(hours=hours)


def original_materials(matter: dict[str, Any]) -> list[str]:
    """The matter's materials that it asks for in original form (a pickup collects these)."""
    return [m["name"] for m in matter.get("materials", []) if "original" in m.get("forms", [])]
