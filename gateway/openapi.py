"""One OpenAPI document for the front-end: every service's paths under /api/v1/<area>.

Pure functions; fetching and caching live in gateway.main. Services serve at their root, so a
service path ``/me`` becomes ``/api/v1/identity/me``. An area whose upstream URL carries a path
(``departments`` → caseflow ``/departments``) takes the service paths under that prefix; the
service's own area then leaves them out. Component names that two services define differently
are renamed ``<area>.<Name>`` (and every ``$ref`` of that service follows); identical ones are
shared. Each operation's ``security`` tells what the gateway demands (token, signature, none).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.routes import DENY, KIOSK, PUBLIC, SIGNED, RouteRule

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "partnerSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Signature",
        "description": "HMAC-SHA256 partner signature with X-Partner-Id, X-Timestamp, X-Nonce (ADR 0003)",
    },
    "kioskSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Signature",
        "description": "HMAC-SHA256 signature of a registered self-service kiosk: its device id as X-Partner-Id, "
        "with X-Timestamp, X-Nonce (ADR 0003 scheme, ADR 0025); a kiosk token (chn kiosk) is accepted only "
        "on requests the same kiosk signs",
    },
}


@dataclass(frozen=True)
class AreaSource:
    """Where an area's paths come from: a service document and the service path prefix it owns."""

    area: str
    document_key: str  # which fetched document (one per service origin)
    prefix: str  # "" or "/departments"


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                section_and_name = value.removeprefix("#/components/")
                out[key] = "#/components/" + renames.get(section_and_name, section_and_name)
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def _security_for(rule: RouteRule | None) -> list[dict[str, list]]:
    if rule is None:
        return [{"bearer": []}]
    if rule.access == PUBLIC:
        return []
    if rule.access == SIGNED:
        return [{"partnerSignature": []}]
    if rule.access == KIOSK:
        return [{"kioskSignature": []}]
    return [{"bearer": []}]


def merge_openapi(
    sources: list[AreaSource],
    documents: Mapping[str, dict[str, Any] | None],
    match: Callable[[str, str, str], RouteRule | None],
    *,
    title: str = "yiwang API",
    version: str = "1",
) -> dict[str, Any]:
    """Merge the fetched documents (None = the service did not answer) into one."""
    prefixes_by_document: dict[str, list[str]] = {}
    for source in sources:
        if source.prefix:
            prefixes_by_document.setdefault(source.document_key, []).append(source.prefix)

    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    tags: dict[str, dict[str, Any]] = {}
    unavailable: list[str] = []
    renamed_by_document: dict[str, dict[str, str]] = {}

    for source in sources:
        document = documents.get(source.document_key)
        if not document:
            unavailable.append(source.area)
            continue
        renames = renamed_by_document.get(source.document_key)
        if renames is None:
            renames = {}
            for section, entries in (document.get("components") or {}).items():
                target = components.setdefault(section, {})
                for name, value in entries.items():
                    if section == "securitySchemes":
                        continue
                    existing = target.get(name)
                    if existing is None or existing == value:
                        continue
                    renames[f"{section}/{name}"] = f"{section}/{source.area}.{name}"
            for section, entries in (document.get("components") or {}).items():
                if section == "securitySchemes":
                    continue
                target = components.setdefault(section, {})
                for name, value in entries.items():
                    new_name = renames.get(f"{section}/{name}", f"{section}/{name}").split("/", 1)[1]
                    target[new_name] = _rewrite_refs(value, renames)
            renamed_by_document[source.document_key] = renames

        claimed_elsewhere = [p for p in prefixes_by_document.get(source.document_key, []) if p != source.prefix]
        for service_path, item in (document.get("paths") or {}).items():
            if source.prefix:
                if not (service_path == source.prefix or service_path.startswith(source.prefix + "/")):
                    continue
                tail = service_path[len(source.prefix) :]
            else:
                if any(service_path == p or service_path.startswith(p + "/") for p in claimed_elsewhere):
                    continue
                tail = service_path
            public_path = f"/api/v1/{source.area}{tail}"
            new_item: dict[str, Any] = {}
            for key, operation in item.items():
                if key not in HTTP_METHODS:
                    new_item[key] = _rewrite_refs(operation, renames)
                    continue
                rule = match(source.area, key.upper(), public_path)
                if rule is not None and rule.access == DENY:
                    continue
                operation = _rewrite_refs(copy.deepcopy(operation), renames)
                if operation.get("operationId"):
                    operation["operationId"] = f"{source.area}_{operation['operationId']}"
                operation["tags"] = operation.get("tags") or [source.area]
                operation["security"] = _security_for(rule)
                for tag in operation["tags"]:
                    tags.setdefault(tag, {"name": tag})
                new_item[key] = operation
            if any(k in HTTP_METHODS for k in new_item):
                paths[public_path] = new_item

    components["securitySchemes"] = dict(SECURITY_SCHEMES)
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "All services behind the gateway; errors are application/problem+json (RFC 9457).",
        },
        "paths": dict(sorted(paths.items())),
        "components": {k: v for k, v in components.items() if v},
        "tags": sorted(tags.values(), key=lambda t: t["name"]),
    }
    if unavailable:
        merged["info"]["x-unavailable-areas"] = sorted(unavailable)
    return merged
