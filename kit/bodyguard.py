"""A body-wide safety net for JSON requests, as pure ASGI middleware in front of every route.

Schemas check the fields they know (``kit.text.Line`` for names, bounded ints); this guard checks
what no schema sees whole: nesting deeper than ``max_depth`` (a 400 naming the rule, before the
framework's recursive parser meets it), and anywhere in the body — keys too — lone surrogates,
control characters and bidi overrides (``kit.text.text_problem`` with ``multiline=True``), integers
beyond 64 bits and numbers that are not finite (422s naming each field path, ``body.form.name``).

It parses the body once more (the route parses it again); measured in kit/tests/test_bodyguard.py
as a few microseconds for a typical submission, against a millisecond or more for the request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from kit.errors import Problem, field_problem, problem_response
from kit.text import UNSAFE_TEXT, text_problem

DEFAULT_MAX_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_ERRORS = 20

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _OutOfRange:
    """An integer literal that does not fit 64 bits (kept as text: int() of 5000 digits raises)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _NotFinite:
    """NaN, Infinity or -Infinity: Python's json accepts them; JSON (RFC 8259) does not."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _parse_int(text: str) -> int | _OutOfRange:
    if len(text) < 19:  # at most 18 digits (and a sign) always fits
        return int(text)
    if len(text) > 20:
        return _OutOfRange(text)
    number = int(text)
    return number if INT64_MIN <= number <= INT64_MAX else _OutOfRange(text)


def _key_label(key: str) -> str:
    """A key as it may be shown in a problem: escaped when it is itself the hostile part."""
    if text_problem(key, multiline=False) is None:
        return key
    return json.dumps(key)[1:-1]  # ASCII escapes: \ud800, \u202e, \n


def _field(path: tuple | None) -> str:
    parts: list[str] = []
    while path is not None:
        path, part = path
        parts.append(part if type(part) is str and not UNSAFE_TEXT.search(part) else _key_label(str(part)))
    return ".".join(["body", *reversed(parts)])


DEEP_PATH_PARTS = 4  # a too-deep field is named by its first few parts: enough to find it, not 33 levels of it


def too_deep_problem(max_depth: int, path: tuple | None = None) -> Problem:
    """400 for nesting past ``max_depth``, naming the field it starts under (``body`` when the
    parser itself gave up, before any path was known)."""
    field = "body"
    if path is not None:
        full = _field(path).split(".")
        field = ".".join(full[: DEEP_PATH_PARTS + 1]) + (".…" if len(full) > DEEP_PATH_PARTS + 1 else "")
    return Problem(
        400,
        "json-too-deep",
        "JSON nested too deep",
        f"the body nests objects and arrays deeper than {max_depth} levels",
        errors=[{"field": field, "rule": "max_depth", "message": f"at most {max_depth} levels of nesting"}],
        max_depth=max_depth,
    )


def check_json(value: Any, max_depth: int = DEFAULT_MAX_DEPTH) -> Problem | None:
    """The problem with an already parsed JSON value (see ``check_json_body``), or None."""
    errors: list[dict[str, str]] = []
    # (value, path, depth); path is a linked (parent, part) pair, flattened only for an error.
    stack: list[tuple[Any, tuple | None, int]] = [(value, None, 0)]
    pop, push, unsafe = stack.pop, stack.append, UNSAFE_TEXT.search
    while stack:
        node, path, depth = pop()
        kind = type(node)
        if kind is dict:
            if depth >= max_depth:
                return too_deep_problem(max_depth, path)
            for key, item in node.items():
                if unsafe(key):
                    rule, message = text_problem(key, multiline=True) or ("unsafe_text", "unsafe text")
                    errors.append({"field": _field((path, key)), "rule": rule, "message": "key " + message})
                item_kind = type(item)
                if item_kind is str:
                    if unsafe(item):
                        push((item, (path, key), depth + 1))
                elif item_kind is not int and item_kind is not bool and item is not None:
                    push((item, (path, key), depth + 1))
        elif kind is str:  # only strings already found unsafe, or the body itself
            problem = text_problem(node, multiline=True)
            if problem is not None:
                errors.append({"field": _field(path), "rule": problem[0], "message": problem[1]})
        elif kind is list:
            if depth >= max_depth:
                return too_deep_problem(max_depth, path)
            for index, item in enumerate(node):
                item_kind = type(item)
                if item_kind is str:
                    if unsafe(item):
                        push((item, (path, index), depth + 1))
                elif item_kind is not int and item_kind is not bool and item is not None:
                    push((item, (path, index), depth + 1))
        elif kind is _OutOfRange:
            errors.append(
                {"field": _field(path), "rule": "int64_range", "message": "integer beyond 64 bits (-2^63 … 2^63-1)"}
            )
        elif kind is _NotFinite or (kind is float and not math.isfinite(node)):
            errors.append({"field": _field(path), "rule": "finite_number", "message": "number is not finite"})
        if len(errors) >= MAX_ERRORS:
            break
    if not errors:
        return None
    errors.sort(key=lambda e: e["field"])
    first = errors[0]
    return Problem(422, "validation", "Request is not valid", f"{first['field']}: {first['message']}", errors=errors)


# One decoder for every body: json.loads with keyword arguments builds a decoder (and its scanner)
# per call — a tenth of an officer's step in-process (issue 15).
_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_constant=_NotFinite)


def _decode(body: bytes) -> Any:
    """``json.loads(body, parse_int=_parse_int, parse_constant=_NotFinite)``, on the one decoder:
    the same encoding detection (UTF-8, -16 or -32 by the first bytes) and the same errors."""
    return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))


def check_json_body(body: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> Problem | None:
    """The problem with a JSON request body, or None (also None for a body that is not JSON at
    all: the route's own parsing answers that with its 422)."""
    try:
        value = _decode(body)
    except RecursionError:  # deeper than the parser's own recursion limit
        return too_deep_problem(max_depth)
    except UnicodeDecodeError:
        return _not_utf8()
    except ValueError:
        return None
    return check_json(value, max_depth)


def load_json_body(body: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The JSON value of ``body``, parsed once and checked as ``check_json_body`` checks it; raises
    the ``Problem`` when it is not UTF-8, not JSON (``body`` rule ``json_invalid``) or fails a check.
    For a route that reads its body itself (e.g. to verify a signature over the raw bytes)."""
    try:
        value = _DECODER.decode(body.decode("utf-8"))
    except RecursionError:
        raise too_deep_problem(max_depth) from None
    except UnicodeDecodeError:  # RFC 8259: UTF-8 only (json.loads of bytes would guess UTF-16)
        raise _not_utf8() from None
    except ValueError:
        raise field_problem("body", "json_invalid", "the body is not JSON") from None
    problem = check_json(value, max_depth)
    if problem is not None:
        raise problem
    return value


def _not_utf8() -> Problem:
    return Problem(
        400,
        "invalid-encoding",
        "Body is not valid UTF-8",
        "a JSON body must be UTF-8 (RFC 8259)",
        errors=[{"field": "body", "rule": "utf8", "message": "not valid UTF-8"}],
    )


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False  # FastAPI (strict_content_type, the default) does not parse it as JSON either
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


class JsonBodyGuard:
    """Pure ASGI middleware: JSON bodies pass ``check_json_body`` or get its problem."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
                break
        if not _is_json(content_type):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        disconnected: MutableMapping[str, Any] | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                disconnected = message
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and disconnected is None:
            problem = check_json_body(body, self.max_depth)
            if problem is not None:
                response = problem_response(problem, scope.get("path"))
                await response(scope, receive, send)
                return
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                if disconnected is not None and not body:
                    return disconnected
                return {"type": "http.request", "body": body, "more_body": False}
            return disconnected or await receive()

        await self.app(scope, replay, send)
