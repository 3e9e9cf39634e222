"""RFC 9457 problem details for every error a service or the gateway returns."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
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


def _field_name(loc: tuple | list, error: dict[str, Any] | None = None) -> str:
    parts = [str(p) for p in loc]
    # A tagged union ("method": password | sms | …) reports a bad or missing tag at the union's own
    # place; the field at fault is the discriminator.
    if error and error.get("type") in {"union_tag_invalid", "union_tag_not_found"}:
        discriminator = str((error.get("ctx") or {}).get("discriminator", "")).strip("'")
        if discriminator:
            parts.append(discriminator)
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


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# SQLSTATE class 22 is "data exception": a number out of range, a string too long for its column,
# an impossible date. The value the client sent does not fit; nothing was changed.
_DATA_EXCEPTION_CLASS = "22"


def _driver_errors(exc: DBAPIError) -> Iterator[tuple[BaseException, str | None]]:
    """The driver's error and what it wraps (the adapted error wraps asyncpg's), each with its
    SQLSTATE when it has one."""
    seen: set[int] = set()
    error: BaseException | None = exc.orig
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        yield error, sqlstate if isinstance(sqlstate, str) else None
        error = error.__cause__ or error.__context__


def _is_data_error(exc: DBAPIError) -> bool:
    """True when the driver refused a value the client sent (not a broken database)."""
    for error, sqlstate in _driver_errors(exc):
        if sqlstate and sqlstate.startswith(_DATA_EXCEPTION_CLASS):
            return True
        if type(error).__name__ == "DataError" or isinstance(error, OverflowError):
            return True
    return "out of int" in str(exc.orig) and "range" in str(exc.orig)


# SQLSTATE class 08 "connection exception", 57P01–57P03 "the server is shutting down / starting up".
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03")


def _is_database_away(exc: DBAPIError) -> bool:
    """True when the database connection broke or the server is restarting (nothing the request
    asked for was committed): a pooled connection cut by a restart, a refused connect."""
    if exc.connection_invalidated:
        return True
    return any(
        (sqlstate and sqlstate.startswith(_UNAVAILABLE_STATES))
        or isinstance(error, ConnectionError)
        or type(error).__name__ in {"ConnectionDoesNotExistError", "InterfaceError"}
        for error, sqlstate in _driver_errors(exc)
    )


def database_away_problem() -> Problem:
    return Problem(
        503,
        "database-unavailable",
        "Database unavailable",
        "The database connection was lost (a restart or failover); nothing was changed. Try again.",
        headers={"Retry-After": "1"},
    )


def _out_of_range_fields(request: Request) -> list[str]:
    """Path and query parameters holding an integer beyond 64 bits (else beyond 32 bits)."""
    candidates: list[tuple[str, int]] = []
    for where, items in (("path", request.path_params.items()), ("query", request.query_params.multi_items())):
        for name, value in items:
            text = str(value).strip()
            if text.lstrip("+-").isdigit() and len(text) <= 4300:
                candidates.append((f"{where}.{name}", int(text)))
    for low, high in ((INT64_MIN, INT64_MAX), (INT32_MIN, INT32_MAX)):
        fields = [field for field, number in candidates if not low <= number <= high]
        if fields:
            return fields
    return []


def out_of_range_problem(request: Request) -> Problem:
    """422 for a value the database cannot hold, naming the parameter when it is one."""
    fields = _out_of_range_fields(request)
    message = "number out of range (at most 64-bit integers)" if fields else "a value does not fit its field"
    errors = [{"field": f, "rule": "out_of_range", "message": message} for f in fields or ["request"]]
    return Problem(422, "validation", "Request is not valid", f"{errors[0]['field']}: {message}", errors=errors)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error a client can see becomes problem+json; nothing leaks a stack trace."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [
            {"field": _field_name(e.get("loc", ()), e), "rule": _rule_of(e), "message": _message_of(e)}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        problem = Problem(
            422, "validation", "Request is not valid", f"{first['field']}: {first['message']}", errors=errors
        )
        return problem_response(problem, request.url.path)

    # Starlette's HTTPException (unknown route 404, wrong method 405, FastAPI's own 400 for a body
    # it cannot read) and FastAPI's subclass alike.
    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        slug = {
            400: "bad-request",
            401: "unauthorized",
            403: "forbidden",
            404: "not-found",
            405: "method-not-allowed",
            413: "body-too-large",
        }.get(exc.status_code, "http-error")
        title = str(exc.detail) if isinstance(exc.detail, str) else "HTTP error"
        detail = None
        if exc.status_code == 404:
            detail = "no such resource or route"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow")
            detail = f"method {request.method} is not allowed here" + (f"; allowed: {allowed}" if allowed else "")
        problem = Problem(exc.status_code, slug, title, detail, headers=getattr(exc, "headers", None))
        return problem_response(problem, request.url.path)

    # A number beyond what a column holds (a path id past 64 bits that no route bounded): the
    # driver refuses it before anything is written. That is the client's mistake, not a 500.
    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError):
        return problem_response(out_of_range_problem(request), request.url.path)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError):
        if _is_data_error(exc):
            return problem_response(out_of_range_problem(request), request.url.path)
        if _is_database_away(exc):
            log.warning("database away on %s: %s", request.url.path, type(exc.orig).__name__)
            return problem_response(database_away_problem(), request.url.path)
        log.error("database error on %s: %s", request.url.path, type(exc.orig).__name__, exc_info=exc)
        return problem_response(Problem(500, "internal", "Internal error"), request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(Problem(500, "internal", "Internal error"), request.url.path)
