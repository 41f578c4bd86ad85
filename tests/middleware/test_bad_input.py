"""Bad input gets a clear 4xx in OpenAI's error shape, never a 500; an unexpected failure is a
500 in the same shape, logged once with its traceback.

On the tiny random-weight model (``make_app``); the body limit over a real loopback server,
since a chunked body is what a real client sends without ``Content-Length``."""

import json
import logging

import httpx
import pytest
from fastapi.testclient import TestClient

from blendcache.config import ModelConfig, ServerConfig
from blendcache.middleware.server import serving

MODEL = "tiny-llama"
URL = "/v1/chat/completions"
QUESTION = "What is the capital of France?"


def ask(content=QUESTION, **extra):
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], **extra}


def error(message, *, param=None, code=None, kind="invalid_request_error"):
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# -- the body limit ---------------------------------------------------------------------------

def test_a_chunked_body_over_max_body_bytes_is_413(make_app, make_settings):
    app = make_app(make_settings(server=ServerConfig(max_body_bytes=1000)))
    large = httpx.Request("POST", "/", json=ask("x" * 1000, max_tokens=1)).content
    small = httpx.Request("POST", "/", json=ask(max_tokens=1)).content
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        # A generator body goes out chunked, without Content-Length.
        r = http.post(URL, content=iter([large[:600], large[600:]]),
                      headers={"content-type": "application/json"})
        assert "content-length" not in r.request.headers
        assert r.request.headers["transfer-encoding"] == "chunked"
        assert r.status_code == 413
        assert r.json() == error("request body exceeds 1000 bytes")
        ok = http.post(URL, content=iter([small[:20], small[20:]]),
                       headers={"content-type": "application/json"})
        assert ok.status_code == 200, ok.text
    assert app.state.pipeline.metrics["requests"] == 1  # the large one never reached it


# -- documents with no user message -----------------------------------------------------------

NO_USER_MESSAGE = error("documents go at the start of the last user message, and messages has "
                        "none", param="messages", code="no_user_message")


@pytest.mark.parametrize("messages", [
    [{"role": "system", "content": "Answer from the documents."}],
    [{"role": "assistant", "content": "Ask me about the documents."}],
    [{"role": "system", "content": "Be brief."}, {"role": "assistant", "content": "Hello."}],
])
@pytest.mark.parametrize("stream", [False, True])
def test_documents_without_a_user_message_are_a_400(client, messages, stream):
    body = {"model": MODEL, "messages": messages, "documents": ["Paris is in France."],
            "max_tokens": 2, "stream": stream}
    r = client.post(URL, json=body)
    assert (r.status_code, r.json()) == (400, NO_USER_MESSAGE)


def test_a_conversation_without_a_user_message_and_without_documents_is_answered(client):
    body = {"model": MODEL, "messages": [{"role": "system", "content": "Say hello."}],
            "max_tokens": 2}
    r = client.post(URL, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["completion_tokens"] == 2


# -- unexpected exceptions --------------------------------------------------------------------

SERVER_ERROR = error("internal server error (RuntimeError); the server log has the details",
                     kind="server_error")


def _boom():
    raise RuntimeError("a bug")


@pytest.fixture
def failing_app(make_app):
    """The served app plus one route that fails as a bug would (not a BlendCacheError)."""
    app = make_app()
    app.add_api_route("/v1/boom", _boom, methods=["GET"])
    return app


def test_an_unexpected_exception_is_a_500_in_openai_shape_logged_once(failing_app, caplog):
    with caplog.at_level(logging.ERROR), TestClient(failing_app) as c:
        r = c.get("/v1/boom")
    assert (r.status_code, r.json()) == (500, SERVER_ERROR)
    logged = [rec for rec in caplog.records if rec.exc_info]
    assert len(logged) == 1
    assert logged[0].exc_info[0] is RuntimeError
    assert logged[0].getMessage() == "unexpected error on GET /v1/boom"


def test_an_unexpected_exception_over_http_is_a_500_in_openai_shape(failing_app):
    with serving(failing_app) as url:
        r = httpx.get(f"{url}/v1/boom", timeout=60)
    assert r.headers["content-type"] == "application/json"
    assert (r.status_code, r.json()) == (500, SERVER_ERROR)


# -- limits: document count, document size, the context window --------------------------------

def test_more_documents_than_max_documents_is_a_400(make_app, make_settings):
    settings = make_settings(server=ServerConfig(max_documents=3))
    with TestClient(make_app(settings)) as c:
        r = c.post(URL, json=ask(documents=["a", "b", "c", "d"], max_tokens=1))
        assert r.status_code == 400
        assert r.json() == error("4 documents: more than [server] max_documents (3)",
                                 param="documents", code="too_many_documents")
        ok = c.post(URL, json=ask(documents=["a", "b", "c"], max_tokens=1))
        assert ok.status_code == 200, ok.text


def test_a_document_over_max_document_chars_is_a_400(make_app, make_settings):
    settings = make_settings(server=ServerConfig(max_document_chars=100))
    with TestClient(make_app(settings)) as c:
        r = c.post(URL, json=ask(documents=["short", {"id": "d", "text": "y" * 101}],
                                 max_tokens=1))
        assert r.status_code == 400
        assert r.json() == error(
            "document 1 has 101 characters: more than [server] max_document_chars (100)",
            param="documents.1", code="document_too_long")
        ok = c.post(URL, json=ask(documents=["y" * 100], max_tokens=1))
        assert ok.status_code == 200, ok.text


def test_the_documents_route_checks_max_document_chars(make_app, make_settings):
    settings = make_settings(server=ServerConfig(max_document_chars=10))
    with TestClient(make_app(settings)) as c:
        r = c.post("/v1/blendcache/documents", json={"documents": ["0123456789", "0123456789A"]})
    assert r.status_code == 400
    assert r.json() == error(
        "document 1 has 11 characters: more than [server] max_document_chars (10)",
        param="documents.1", code="document_too_long")


def _words(n: int) -> str:
    return " ".join(["word"] * n)


def test_a_prompt_over_the_context_window_is_a_400(client, tiny_engine):
    window = tiny_engine.model.config.max_position_embeddings
    content = _words(window)
    prompt = len(tiny_engine.chat_prompt_ids([{"role": "user", "content": content}]))
    assert prompt > window
    r = client.post(URL, json=ask(content, max_tokens=1))
    assert r.status_code == 400
    assert r.json() == error(
        f"the prompt is {prompt} tokens: the model's context window of {window} tokens "
        f"(max_position_embeddings) leaves no room for an answer", param="messages",
        code="context_length_exceeded")


def test_documents_count_against_the_context_window(client, tiny_engine):
    window = tiny_engine.model.config.max_position_embeddings
    r = client.post(URL, json=ask(documents=[_words(window // 2), _words(window // 2)],
                                  max_tokens=1, blendcache={"cache": "off"}))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"
    assert r.json()["error"]["message"].endswith(
        f"the model's context window of {window} tokens (max_position_embeddings) leaves no "
        f"room for an answer")


def _prompt_of(tiny_engine, room: int) -> tuple[str, int]:
    """A question whose chat prompt leaves ``room`` or a few more tokens of the window."""
    def tokens(content: str) -> int:
        return len(tiny_engine.chat_prompt_ids([{"role": "user", "content": content}]))

    window = tiny_engine.model.config.max_position_embeddings
    n = window - room
    while tokens(_words(n)) > window - room:
        n -= 1
    return _words(n), tokens(_words(n))


def test_max_tokens_past_the_context_window_is_a_400(client, tiny_engine):
    window = tiny_engine.model.config.max_position_embeddings
    content, prompt = _prompt_of(tiny_engine, 8)
    room = window - prompt
    r = client.post(URL, json=ask(content, max_tokens=room + 1))
    assert r.status_code == 400
    assert r.json() == error(
        f"the prompt ({prompt} tokens) and max_tokens ({room + 1}) exceed the model's context "
        f"window of {window} tokens", param="max_tokens", code="context_length_exceeded")
    r = client.post(URL, json=ask(content, max_completion_tokens=room + 1))
    assert r.json()["error"]["param"] == "max_completion_tokens"
    r = client.post(URL, json=ask(content, max_tokens=room, blendcache={"cache": "off"}))
    assert r.status_code == 200, r.text


def test_without_max_tokens_the_answer_is_cut_at_the_context_window(make_app, make_settings,
                                                                    tiny_engine):
    window = tiny_engine.model.config.max_position_embeddings
    content, prompt = _prompt_of(tiny_engine, 3)
    settings = make_settings(model=ModelConfig(max_new_tokens=64))
    with TestClient(make_app(settings)) as c:
        r = c.post(URL, json=ask(content, blendcache={"cache": "off"}))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["usage"]["prompt_tokens"] == prompt
    assert (body["usage"]["completion_tokens"], body["choices"][0]["finish_reason"]) == (
        window - prompt, "length")


def test_a_failure_mid_stream_ends_on_an_openai_error_event(caplog):
    from blendcache.errors import InvalidRequestError
    from blendcache.middleware.streaming import guarded

    def events(exc):
        yield "data: 1\n\n"
        raise exc

    with caplog.at_level(logging.ERROR):
        assert list(guarded(events(RuntimeError("a bug")))) == [
            "data: 1\n\n", f"data: {json.dumps(SERVER_ERROR)}\n\n"]
    assert [rec.exc_info[0] for rec in caplog.records] == [RuntimeError]
    refused = InvalidRequestError("no", param="stop", code="bad_stop")
    refusal = error("no", param="stop", code="bad_stop")
    assert list(guarded(events(refused)))[1] == f"data: {json.dumps(refusal)}\n\n"


def test_documents_without_a_user_message_are_a_400_in_upstream_mode_too(make_settings, embedder,
                                                                         tmp_path):
    from blendcache.config import ModelConfig, UpstreamConfig
    from blendcache.middleware.app import create_app

    settings = make_settings(model=ModelConfig(path=str(tmp_path / "no-such-model")),
                             upstream=UpstreamConfig(url="http://127.0.0.1:9/v1"))
    body = {"model": MODEL, "messages": [{"role": "system", "content": "Be brief."}],
            "documents": ["Paris is in France."], "max_tokens": 2}
    with TestClient(create_app(settings, embedder=embedder)) as c:
        r = c.post(URL, json=body)
    assert (r.status_code, r.json()) == (400, NO_USER_MESSAGE)


# -- found by the schemathesis run (test_openapi.py) ------------------------------------------

def test_a_tiny_temperature_samples_like_greedy(client):
    off = {"cache": "off"}
    greedy = client.post(URL, json=ask(max_tokens=4, temperature=0, blendcache=off))
    tiny = client.post(URL, json=ask(max_tokens=4, temperature=5e-239, blendcache=off))
    assert tiny.status_code == 200, tiny.text
    assert tiny.json()["choices"] == greedy.json()["choices"]


@pytest.mark.parametrize("url,body", [
    (URL, ask(max_tokens=1)),
    ("/v1/completions", {"model": MODEL, "prompt": QUESTION, "max_tokens": 1}),
])
@pytest.mark.parametrize("seed,accepted", [
    (-2**63, True), (2**63 - 1, True), (2**63, False), (-2**63 - 1, False)])
def test_a_seed_is_an_int64(client, url, body, seed, accepted):
    r = client.post(url, json={**body, "seed": seed, "temperature": 1.0,
                               "blendcache": {"cache": "off"}})
    if accepted:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 400
        assert r.json()["error"]["param"] == "seed"
        assert r.json()["error"]["message"].startswith("Input should be")
