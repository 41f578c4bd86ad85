"""The OpenAPI schema as the server really answers: FastAPI documents a 422 with its own
validation body on every route that validates input, but this server answers bad input with a
400 in OpenAI's error shape (declared on each route with ``schemas.error_responses``), so the
422 and its body models are dropped, and errors are documented as JSON on every route.
Generated clients then handle the errors that really come back."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

from blendcache.middleware.schemas import STREAM_CHUNKS

_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi  # FastAPI's generator; it caches the schema on app.openapi_schema

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    _as_answered(operation.get("responses", {}))
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name in _FASTAPI_VALIDATION_SCHEMAS:
                components.pop(name, None)
            for model in STREAM_CHUNKS:  # referenced by the event-stream responses
                _add_component(components, model)
        return app.openapi_schema

    app.openapi = openapi


def _add_component(components: dict, model: type[BaseModel]) -> None:
    """``model`` and the models it nests, as components (the ones already there are kept)."""
    model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, nested in model_schema.pop("$defs", {}).items():
        components.setdefault(name, nested)
    components.setdefault(model.__name__, model_schema)


def _as_answered(responses: dict) -> None:
    """No 422; every error is JSON, also on a route whose success is not (GET /metrics)."""
    responses.pop("422", None)
    for status, response in responses.items():
        content = response.get("content", {})
        if int(status) >= 400 and content and "application/json" not in content:
            response["content"] = {"application/json": next(iter(content.values()))}
