"""RFC 9457 problem details for every error a service or the gateway returns."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://yiwang.example/problems/"

log = logging.getLogger("yiwang.errors")


class Problem(Exception):
    """An error the client can act on. ``type_`` is a short slug under PROBLEM_BASE."""

    def __init__(
        self,
        status: int,
        type_: str,
        title: str,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.type_ = type_
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": PROBLEM_BASE + self.type_, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def field_problem(field: str, rule: str, message: str, *, status: int = 422) -> Problem:
    """A validation problem that names one field and the rule it broke."""
    return Problem(
        status,
        "validation",
        "Request is not valid",
        f"{field}: {message}",
        errors=[{"field": field, "rule": rule, "message": message}],
    )


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(instance), status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )


def _field_name(loc: tuple | list) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts)


def _rule_of(error: dict[str, Any]) -> str:
    # pydantic's own error type ("string_too_short", "missing"), or our rule from a ValueError
    # raised as "rule: message" inside a validator (see kit.validation).
    ctx = error.get("ctx") or {}
    inner = ctx.get("error")
    if isinstance(inner, RuleViolation):
        return inner.rule
    return str(error.get("type", "invalid"))


def _message_of(error: dict[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    inner = ctx.get("error")
    if isinstance(inner, RuleViolation):
        return inner.message
    return str(error.get("msg", "invalid"))


class RuleViolation(ValueError):
    """Raised by validators so the problem response names the domain rule (e.g. ``checksum``)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def install_problem_handlers(app: FastAPI) -> None:
    """Every error a client can see becomes problem+json; nothing leaks a stack trace."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [
            {"field": _field_name(e.get("loc", ())), "rule": _rule_of(e), "message": _message_of(e)}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        problem = Problem(
            422, "validation", "Request is not valid", f"{first['field']}: {first['message']}", errors=errors
        )
        return problem_response(problem, request.url.path)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        slug = {401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed"}.get(
            exc.status_code, "http-error"
        )
        title = str(exc.detail) if isinstance(exc.detail, str) else "HTTP error"
        problem = Problem(exc.status_code, slug, title, headers=getattr(exc, "headers", None))
        return problem_response(problem, request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(Problem(500, "internal", "Internal error"), request.url.path)
