"""The OpenAPI schema documents the responses the server really gives (OpenAI's error body on
400/401/404/413/500, no FastAPI 422), checked by a bounded schemathesis run against the app on
the tiny model: no 5xx, and every response conforms to the schema (status code, content type,
headers, body)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from blendcache.config import ModelConfig

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


def test_errors_are_documented_in_openai_shape_and_422_is_gone(client):
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components and "ValidationError" not in components
    assert components["ErrorResponse"]["required"] == ["error"]
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    chat = schema["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert sorted(chat) == ["200", "400", "401", "404", "413", "500"]
    for status in ("400", "401", "404", "413", "500"):
        assert chat[status]["content"] == {"application/json": {"schema": error_ref}}
    assert sorted(chat["200"]["content"]) == ["application/json", "text/event-stream"]
    assert sorted(schema["paths"]["/v1/models/{model_id}"]["get"]["responses"]) == [
        "200", "401", "404", "500"]
    assert schema["paths"]["/metrics"]["get"]["responses"]["500"]["content"] == {
        "application/json": {"schema": error_ref}}
    assert sorted(schema["paths"]["/readyz"]["get"]["responses"]) == ["200", "500", "503"]
    every = [op["responses"] for ops in schema["paths"].values() for op in ops.values()]
    assert all("422" not in responses for responses in every)


# Every operation of the schema (pinned, so that a new route joins the run).
OPERATIONS = [
    ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"),
    ("POST", "/v1/blendcache/documents"), ("GET", "/v1/models"), ("GET", "/v1/models/{model_id}"),
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/health"), ("GET", "/v1/blendcache/stats"),
    ("GET", "/metrics"), ("DELETE", "/v1/blendcache/entries"),
    ("DELETE", "/v1/blendcache/entries/{entry_id}"), ("POST", "/v1/blendcache/feedback"),
    ("POST", "/v1/blendcache/lookup"), ("POST", "/v1/blendcache/store"),
]
# Examples per operation and mode (19 runs; a GET without parameters has one to give): about
# 280 requests in all, somewhat more than a default `schemathesis run`.
MAX_EXAMPLES = 20


def test_the_run_covers_every_operation(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert sorted((m.upper(), p) for p, ops in paths.items() for m in ops) == sorted(OPERATIONS)


# Positive cases for every operation, negative ones where there is input to get wrong (a
# body; the GET routes' only parameter, a model id, is any string).
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if m == "POST"]


def name_the_served_model(case) -> None:
    """A generated model name is almost never the served one (a 404): most cases name it, so
    they reach the pipeline and their answers are checked against the schema too."""
    if isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
        case.body["model"] = "tiny-llama"
    if "model_id" in (case.path_parameters or {}):
        case.path_parameters["model_id"] = "tiny-llama"


@pytest.mark.parametrize("method,path,mode", CASES)
def test_no_5xx_and_every_response_as_documented(make_app, make_settings, method, path, mode):
    # Short answers: a generated request without max_tokens decodes 4 tokens.
    app = make_app(make_settings(model=ModelConfig(max_new_tokens=4)))
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]

    # NOTE: derandomized, so a run is reproducible (the same cases every time).
    @given(case=operation.as_strategy(mode), draw=st.integers(0, 3))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def call(case, draw):
        if draw:  # three cases in four
            name_the_served_model(case)
        case.call_and_validate(checks=CHECKS)

    call()
