"""Request bodies parsed by pydantic-core straight from the bytes, for the hottest endpoint.

FastAPI's own body handling (``json.loads``, then validation through its dependency machinery)
costs more than the rest of a small request. ``model_validate_json`` does both in one pass in
Rust. Errors are raised as FastAPI's ``RequestValidationError``, so they get the same 422 as any
other endpoint, and the OpenAPI document is told about the body explicitly.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


async def parse_body(request: Request, model: type[M]) -> M:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON body of ``model`` (see :func:`publish_schemas`)."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def publish_schemas(app: FastAPI, *models: type[BaseModel]) -> None:
    """Adds ``models`` to the OpenAPI components: bodies read by :func:`parse_body` are not
    parameters FastAPI knows about, so it would not list their schemas itself."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schemas.setdefault(model.__name__, model.model_json_schema(
                    ref_template="#/components/schemas/{model}"))
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
