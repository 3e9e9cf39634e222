"""Every event type on the bus, as pydantic models. JSON Schemas in contracts/schemas/ are generated
from these (``make contracts``) and a test fails when they drift.

One module per publishing service (``contracts/events/<service>.py``), found by walking this
package: a new service's events need no edit here (ADR 0014).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from kit.events import EventData


def event_modules() -> list[ModuleType]:
    """``contracts.events.<service>`` for every module in this package, by name."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def all_event_models() -> list[type[EventData]]:
    models: list[type[EventData]] = []
    for module in event_modules():
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, EventData) and value is not EventData:
                if value.__module__ == module.__name__:  # defined here, not imported from another module
                    models.append(value)
    return sorted(models, key=lambda m: m.event_type)
