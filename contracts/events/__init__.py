"""Every event type on the bus, as pydantic models. JSON Schemas in contracts/schemas/ are generated
from these (``make contracts``) and a test fails when they drift."""

from __future__ import annotations

from contracts.events import caseflow, catalog, identity, licence
from kit.events import EventData

MODULES = [identity, catalog, caseflow, licence]


def all_event_models() -> list[type[EventData]]:
    models: list[type[EventData]] = []
    for module in MODULES:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, EventData) and value is not EventData:
                models.append(value)
    return sorted(models, key=lambda m: m.event_type)
