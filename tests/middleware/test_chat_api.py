import json

import pytest

pytestmark = pytest.mark.model

MODEL = "SmolLM2-135M-Instruct"


def ask(content="What is the capital of France?", **extra):
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], **extra}


def test_models_lists_the_local_model(client):
    r = client.get("/v1/models")
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["data"]] == [MODEL]
    assert client.get(f"/v1/models/{MODEL}").json()["id"] == MODEL
    assert client.get("/v1/models/gpt-9").status_code == 404


def test_chat_completion(client):
    r = client.post("/v1/chat/completions", json=ask(max_tokens=16))
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["x-blendcache-cache"] == "miss"
    assert body["object"] == "chat.completion"
    assert "Paris" in body["choices"][0]["message"]["content"]
    assert body["choices"][0]["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert body["blendcache"]["cache"] == "miss"


def test_streaming_matches_non_streaming(client):
    off = {"cache": "off"}  # both from the model, not the second from the semantic cache
    plain = client.post("/v1/chat/completions", json=ask(max_tokens=16, blendcache=off)).json()
    with client.stream("POST", "/v1/chat/completions",
                       json=ask(max_tokens=16, stream=True, blendcache=off,
                                stream_options={"include_usage": True})) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"] == plain["usage"]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == plain["choices"][0]["finish_reason"]


@pytest.mark.parametrize("body,param", [
    ({"model": MODEL}, "messages"),
    ({"model": MODEL, "messages": []}, "messages"),
    ({"model": MODEL, "messages": "hi"}, "messages"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"},
     "max_tokens"),
    ({"model": MODEL, "messages": [{"role": "user"}]}, "messages"),
    ({"model": MODEL, "messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
    ({"model": MODEL, "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": -1},
     "temperature"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, "stream"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "documents": [3]},
     "documents.0"),
])
def test_bad_requests_get_openai_shaped_400(client, body, param):
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] is not None and error["param"].startswith(param)
    assert error["message"]


def test_invalid_json_and_unknown_model(client):
    r = client.post("/v1/chat/completions", content=b"{not json",
                    headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "request body is not valid JSON"
    r = client.post("/v1/chat/completions", json={**ask(), "model": "gpt-4o"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"


def test_unknown_route_is_openai_shaped(client):
    r = client.get("/v1/nothing")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found_error"


def test_api_keys_map_to_tenants(make_app, make_settings):
    from fastapi.testclient import TestClient

    from blendcache.config import ServerConfig

    settings = make_settings(server=ServerConfig(api_keys={"k1": "acme"}))
    with TestClient(make_app(settings)) as c:
        assert c.get("/v1/models").status_code == 401
        bad = c.get("/v1/models", headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401
        assert bad.json()["error"]["code"] == "invalid_api_key"
        assert c.get("/v1/models", headers={"authorization": "Bearer k1"}).status_code == 200
