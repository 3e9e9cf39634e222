"""Answers for hot reads whose body is already plain JSON data."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


def json_answer(content: Any, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``content`` — only str, int, float, bool, None, lists and dicts, built to the route's
    response model — as the JSON body, compact and UTF-8 as FastAPI writes it.

    Returned by a route that keeps its ``response_model`` (the OpenAPI documents it), this skips
    FastAPI validating the answer against that model once more before serialising it: on a list
    of twenty cases that was a fifth of the request (issue 15). A value of any other type is a
    TypeError, never a silently different encoding."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(body.encode(), status_code=status_code, headers=headers, media_type="application/json")
