"""Writes contracts/schemas/*.json and contracts/asyncapi.json from the event models.

``python -m contracts.generate`` writes; ``python -m contracts.generate --check`` fails on drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from contracts.departments import PUSH_MODELS, Receipt, Webhook
from contracts.events import all_event_models
from kit.events import CloudEvent

HERE = Path(__file__).parent
SCHEMAS = HERE / "schemas"
DEPARTMENTS = HERE / "departments"  # what department systems push and receive (ADR 0019)


def _dumped(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def department_schemas() -> dict[Path, str]:
    """One JSON Schema per push type, the receipt and the webhook body."""
    models = {f"push.{name}.v1": model for name, model in PUSH_MODELS.items()}
    models |= {"receipt.v1": Receipt, "webhook.v1": Webhook}
    files: dict[Path, str] = {}
    for name, model in models.items():
        schema = model.model_json_schema()
        schema["$id"] = f"https://yiwang.example/schemas/departments/{name}.json"
        files[DEPARTMENTS / f"{name}.json"] = _dumped(schema)
    return files


def rendered() -> dict[Path, str]:
    files: dict[Path, str] = {}
    channels: dict[str, dict] = {}
    messages: dict[str, dict] = {}
    for model in all_event_models():
        schema = model.model_json_schema()
        schema["$id"] = f"https://yiwang.example/schemas/{model.event_type}.json"
        schema["x-event-type"] = model.event_type
        schema["x-nats-subject"] = model.nats_subject
        files[SCHEMAS / f"{model.event_type}.json"] = (
            json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        )
        name = model.__name__
        messages[name] = {
            "name": model.event_type,
            "contentType": "application/cloudevents+json",
            "payload": {"$ref": f"schemas/{model.event_type}.json"},
        }
        channels[model.nats_subject] = {
            "address": model.nats_subject,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
    envelope = CloudEvent.model_json_schema()
    files[SCHEMAS / "cloudevent.json"] = json.dumps(envelope, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    asyncapi = {
        "asyncapi": "3.0.0",
        "info": {"title": "yiwang events", "version": "1", "description": "CloudEvents 1.0 on NATS JetStream"},
        "servers": {"nats": {"host": "127.0.0.1:4222", "protocol": "nats"}},
        "channels": channels,
        "components": {"messages": messages},
    }
    files[HERE / "asyncapi.json"] = json.dumps(asyncapi, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return files | department_schemas()


def drift() -> list[str]:
    expected = rendered()
    problems = [str(path) for path, text in expected.items() if not path.exists() or path.read_text() != text]
    stale = [str(p) for folder in (SCHEMAS, DEPARTMENTS) for p in folder.glob("*.json") if p not in expected]
    return problems + [f"{p} (no model)" for p in stale]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        problems = drift()
        for problem in problems:
            print(f"drift: {problem}")
        return 1 if problems else 0
    SCHEMAS.mkdir(exist_ok=True)
    DEPARTMENTS.mkdir(exist_ok=True)
    for path, text in rendered().items():
        path.write_text(text)
    print(f"wrote {len(rendered())} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
