"""Every service's OpenAPI document names the problems it can answer with.

FastAPI documents only the success response and a 422 as ``application/json``; the kit answers
every error as ``application/problem+json`` (RFC 9457). ``document_problems`` rewrites the
generated document once: a shared ``Problem`` schema, the 422 as a problem, and the statuses any
operation can meet (a bad path or body, no or a revoked token, a missing resource, the rate limit),
plus, for operations that take a body or change state, a conflict, a too-large or unsupported body.
Statuses a router documents itself (caseflow's 428) stay.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; extra members (rule, header, reason, …) say more.",
    "type": "object",
    "required": ["type", "title", "status"],
    "additionalProperties": True,
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": ["string", "null"]},
        "instance": {"type": ["string", "null"]},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "rule": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
PROBLEM_MEDIA = "application/problem+json"
EVERY_OPERATION = {
    "400": "The path or body is malformed (encoding, JSON depth, separators)",
    "401": "No token, or a token that is expired or revoked",
    "403": "The caller may not do this",
    "404": "Not found (or not visible to the caller)",
    "422": "A field breaks a rule: `errors` names the field and the rule",
    "429": "Too many requests; see Retry-After",
}
WRITING_OPERATION = {
    "409": "Conflicts with the current state",
    "413": "The body is too large",
    "415": "The body's media type is not accepted",
}
_WRITE_METHODS = {"post", "put", "patch", "delete"}


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def add_problem_responses(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``document`` in place (and return it): every error response is a problem."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for item in (document.get("paths") or {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            wanted = dict(EVERY_OPERATION)
            if method in _WRITE_METHODS or "requestBody" in operation:
                wanted.update(WRITING_OPERATION)
            for status, response in list(responses.items()):
                if status[:1] in {"4", "5"}:
                    described = response.get("description") or wanted.get(status, "Problem")
                    if described == "Validation Error":
                        described = wanted["422"]
                    responses[status] = _problem_response(described)
            for status, description in wanted.items():
                responses.setdefault(status, _problem_response(description))
    return document


def document_problems(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document with problem responses (built once, cached)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_problem_responses(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
