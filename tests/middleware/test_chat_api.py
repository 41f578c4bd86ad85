"""POST /v1/chat/completions and the model routes: OpenAI's shapes, server-sent events, errors.

Behaviour on the tiny random-weight model (``client``); the real model's answer in one test."""

import json

import pytest
from fastapi.testclient import TestClient

from blendcache.config import ServerConfig

MODEL = "tiny-llama"
URL = "/v1/chat/completions"


def ask(content="What is the capital of France?", **extra):
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], **extra}


def events(body: str) -> list[str]:
    """The payloads of a server-sent event stream, each framed as ``data: <payload>\\n\\n``."""
    frames = body.split("\n\n")
    assert frames[-1] == "", "the stream ends with a blank line"
    assert all(f.startswith("data: ") and "\n" not in f for f in frames[:-1]), frames
    return [f.removeprefix("data: ") for f in frames[:-1]]


def test_models_lists_the_local_model(client):
    r = client.get("/v1/models")
    assert r.status_code == 200
    assert r.json() == {"object": "list", "data": [
        {"id": MODEL, "object": "model", "created": 0, "owned_by": "blendcache"}]}
    assert client.get(f"/v1/models/{MODEL}").json()["id"] == MODEL
    missing = client.get("/v1/models/gpt-9")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "model_not_found")


def test_chat_completion_shape(client, tiny_engine):
    r = client.post(URL, json=ask(max_tokens=4))
    assert r.status_code == 200, r.text
    assert r.headers["x-blendcache-cache"] == "miss"
    body = r.json()
    assert body["id"].startswith("chatcmpl-")
    assert (body["object"], body["model"]) == ("chat.completion", MODEL)
    (choice,) = body["choices"]
    assert (choice["index"], choice["message"]["role"], choice["finish_reason"]) == (
        0, "assistant", "length")
    prompt = len(tiny_engine.chat_prompt_ids([{"role": "user", "content": ask()["messages"][0]
                                               ["content"]}]))
    assert body["usage"] == {"prompt_tokens": prompt, "completion_tokens": 4,
                             "total_tokens": prompt + 4}
    assert set(body["blendcache"]) == {"cache", "category", "ttft_ms", "entry_id"}
    assert (body["blendcache"]["cache"], body["blendcache"]["category"]) == ("miss", "default")


def test_streaming_is_framed_as_server_sent_events_and_matches_non_streaming(client):
    off = {"cache": "off"}  # both from the model, not the second from the semantic cache
    plain = client.post(URL, json=ask(max_tokens=4, blendcache=off)).json()
    r = client.post(URL, json=ask(max_tokens=4, stream=True, blendcache=off,
                                  stream_options={"include_usage": True}))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-blendcache-cache"] == "miss"
    payloads = events(r.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert len({c["id"] for c in chunks}) == 1
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [c["choices"][0]["delta"] for c in chunks[1:-2]]
    assert "".join(d["content"] for d in deltas) == plain["choices"][0]["message"]["content"]
    last = chunks[-2]
    assert (last["choices"][0]["delta"], last["choices"][0]["finish_reason"]) == ({}, "length")
    assert set(last["blendcache"]) == {"cache", "ttft_ms"}
    assert (chunks[-1]["choices"], chunks[-1]["usage"]) == ([], plain["usage"])


def test_a_stream_without_include_usage_has_no_usage_chunk(client):
    r = client.post(URL, json=ask(max_tokens=2, stream=True))
    chunks = [json.loads(p) for p in events(r.text)[:-1]]
    assert all(len(c["choices"]) == 1 and "usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("body,param", [
    ({"model": MODEL}, "messages"),
    ({"model": MODEL, "messages": []}, "messages"),
    ({"model": MODEL, "messages": "hi"}, "messages"),
    (ask(max_tokens="many"), "max_tokens"),
    (ask(max_tokens=0), "max_tokens"),
    ({"model": MODEL, "messages": [{"role": "user"}]}, "messages"),
    ({"model": MODEL, "messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    (ask(n=2), "n"),
    (ask(temperature=-1), "temperature"),
    (ask(top_p=0), "top_p"),
    (ask(stream="yes"), "stream"),
    (ask(documents="not a list"), "documents"),
    (ask(blendcache={"recompute_ratio": 2}), "blendcache.recompute_ratio"),
    (ask(blendcache={"cache": "maybe"}), "blendcache.cache"),
])
def test_bad_requests_get_openai_shaped_400(client, body, param):
    r = client.post(URL, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, None)
    assert error["message"].endswith(f" at '{param}'")


# NOTE: a value that fits no branch of a union is reported at the first branch
# ("documents.0.str"), whatever the client meant; the path up to the item is what we pin.
@pytest.mark.parametrize("body,param", [
    (ask(documents=[3]), "documents.0"),
    (ask(documents=[{"text": 3}]), "documents.0"),
    (ask(documents=[{"id": "x"}]), "documents.0"),
    (ask(documents=[{"text": "a", "extra": 1}]), "documents.0"),
    ({"model": MODEL, "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    (ask(stop=["a", "b", "c", "d", "e"]), "stop"),
])
def test_bad_union_values_get_400_at_their_item(client, body, param):
    r = client.post(URL, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"].startswith(f"{param}.")


def test_invalid_json_and_unknown_model(client):
    r = client.post(URL, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"error": {"message": "request body is not valid JSON",
                                  "type": "invalid_request_error", "param": None, "code": None}}
    r = client.post(URL, json={**ask(), "model": "gpt-4o"})
    assert r.status_code == 404
    assert r.json() == {"error": {
        "message": f"model 'gpt-4o' does not exist; this server serves '{MODEL}'",
        "type": "not_found_error", "param": "model", "code": "model_not_found"}}
    assert client.post(URL, json=ask(model="default", max_tokens=1)).status_code == 200


def test_unknown_route_is_openai_shaped(client):
    r = client.get("/v1/nothing")
    assert r.status_code == 404
    assert r.json() == {"error": {"message": "Not Found", "type": "not_found_error",
                                  "param": None, "code": None}}


def test_a_body_over_max_body_bytes_is_413(make_app, make_settings):
    settings = make_settings(server=ServerConfig(max_body_bytes=1000))
    small = ask(max_tokens=1)
    large = ask("x" * 1000, max_tokens=1)
    with TestClient(make_app(settings)) as c:
        r = c.post(URL, json=large)
        assert r.status_code == 413
        assert r.json() == {"error": {"message": "request body exceeds 1000 bytes",
                                      "type": "invalid_request_error", "param": None,
                                      "code": None}}
        assert c.post(URL, json=small).status_code == 200
        assert c.app.state.pipeline.metrics["requests"] == 1  # the large one never reached it


@pytest.mark.model
def test_the_real_model_answers(model_client):
    r = model_client.post(URL, json=ask(model="SmolLM2-135M-Instruct", max_tokens=16))
    assert r.status_code == 200, r.text
    assert "Paris" in r.json()["choices"][0]["message"]["content"]
