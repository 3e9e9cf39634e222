"""Query parameters a hot route reads itself, as pydantic models, documented as FastAPI documents them.

FastAPI solves every declared query parameter on its own (its own validation, its own lookup of
the name, its own default) and every dependency on its own: for the worklist's six parameters and
the pagination dependency that was a tenth of the request's CPU (issue 15). A hot route instead
takes the ``Request``, validates its query string against a model with :func:`read` (one pydantic
call) and puts :func:`parameters` in its ``openapi_extra``: the parameters FastAPI itself renders
for ``Annotated[Model, Query()]``, so the document's names, types, bounds, defaults and
descriptions are the model's, as they are for a declared parameter.

A bad value is the ``RequestValidationError`` FastAPI raises, with the same ``("query", name)``
location and pydantic's own error type and message, so ``kit.errors`` answers the same problem.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def parameters(*models: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI parameters of ``models``' fields, in order, as FastAPI documents a route that
    declares ``Annotated[Model, Query()]`` (rendered once, by FastAPI's ``get_openapi``)."""
    documented: list[dict[str, Any]] = []
    for model in models:

        async def declared(query: Any) -> None:
            """Never called: the declaration FastAPI documents."""

        declared.__annotations__ = {"query": Annotated[model, Query()], "return": None}  # not a string to resolve
        router = APIRouter()
        router.add_api_route("/", declared, methods=["GET"])
        operation = get_openapi(title=model.__name__, version="0", routes=router.routes)["paths"]["/"]["get"]
        found = operation["parameters"]
        if "$ref" in repr(found):  # a schema of its own would need the app's components
            raise ValueError(f"{model.__name__}: a query parameter that refers to a schema")
        documented.extend(found)
    return documented


def read(model: type[M], request: Request, errors: list[dict[str, Any]]) -> M | None:
    """``model`` from the request's query string (a repeated name: its last value, as FastAPI
    reads it; names the model does not have are ignored), or None with its errors added to
    ``errors`` as FastAPI reports a query parameter's (``loc`` ``("query", name)``)."""
    try:
        return model.model_validate(request.query_params)
    except ValidationError as invalid:
        errors.extend({**error, "loc": ("query", *error["loc"])} for error in invalid.errors(include_url=False))
        return None
