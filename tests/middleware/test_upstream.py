"""Upstream mode against a real second server on loopback: a blendcache app over the tiny model
(its own semantic layer off, so it answers every request it gets) served by uvicorn, with the
upstream-mode app in front of it. The front never loads a model: its ``--model`` does not exist.
"""

import contextlib
import json
import socket

import httpx
import pytest
from fastapi.testclient import TestClient

from blendcache.chunk_cache.layout import format_document
from blendcache.config import (
    AuthConfig,
    ModelConfig,
    SemanticConfig,
    StorageConfig,
    TenantConfig,
    UpstreamConfig,
    load_settings,
)
from blendcache.errors import ConfigError, ModelError
from blendcache.index.semantic_cache import CachedAnswer
from blendcache.middleware.app import create_app
from blendcache.middleware.pipeline import ChatJob, Miss, _serves
from blendcache.middleware.schemas import ChatCompletionRequest
from blendcache.middleware.server import serving
from blendcache.middleware.upstream import Upstream
from blendcache.recompute.generate import SamplingParams

URL = "/v1/chat/completions"
QUESTION = "What is the capital of France?"
DOCS = ["The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        "Mount Fuji is the highest mountain in Japan."]
MAX_TOKENS = 8


def ask(question: str = QUESTION, **fields) -> dict:
    return {"model": "tiny-llama", "messages": [{"role": "user", "content": question}],
            "max_tokens": MAX_TOKENS, **fields}


def events(lines) -> list[dict]:
    """The JSON events of an SSE response (``[DONE]`` as the string ``"[DONE]"``)."""
    out = []
    for line in lines:
        if line.startswith("data: "):
            data = line[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def pieces(chunks: list) -> list[str]:
    return [c["choices"][0]["delta"]["content"] for c in chunks
            if isinstance(c, dict) and c.get("choices") and c["choices"][0]["delta"].get("content")]


def upstream_requests(upstream_url: str) -> int:
    """Requests the upstream has answered, by its own counter."""
    return httpx.get(f"{upstream_url}/blendcache/stats").json()["requests"].get("requests", 0)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def upstream_error(message: str, code: str) -> dict:
    return {"error": {"message": message, "type": "upstream_error", "param": None, "code": code}}


@pytest.fixture
def make_upstream_url(make_app, make_settings, tmp_path):
    """``make_upstream_url(tenants=())``: serve a second blendcache app (tiny model, semantic
    layer off) on loopback for the test; its base URL as an OpenAI client takes it."""
    stack = contextlib.ExitStack()

    def make(tenants: tuple[TenantConfig, ...] = ()) -> str:
        settings = make_settings(storage=StorageConfig(data_dir=str(tmp_path / "upstream")),
                                 semantic=SemanticConfig(enabled=False), tenants=tenants)
        return stack.enter_context(serving(make_app(settings))) + "/v1"

    with stack:
        yield make


@pytest.fixture
def upstream_url(make_upstream_url):
    return make_upstream_url()


@pytest.fixture
def front_settings(make_settings, tmp_path):
    """``front_settings(url, tenants=(), auth=AuthConfig(), **upstream_fields)``: upstream-mode
    settings whose model path does not exist."""

    def make(url: str, *, tenants: tuple[TenantConfig, ...] = (), auth: AuthConfig = AuthConfig(),
             **fields):
        return make_settings(storage=StorageConfig(data_dir=str(tmp_path / "front")),
                             model=ModelConfig(path=str(tmp_path / "no-such-model")),
                             tenants=tenants, auth=auth, upstream=UpstreamConfig(url=url, **fields))

    return make


@pytest.fixture
def make_front(front_settings, embedder):
    """``make_front(url, transport=None, **front_settings)``: the upstream-mode app."""

    def make(url: str, *, transport: httpx.BaseTransport | None = None, **kwargs):
        settings = front_settings(url, **kwargs)
        upstream = Upstream(settings.upstream, transport=transport) if transport else None
        return create_app(settings, embedder=embedder, upstream=upstream)

    return make


# -- no local model ------------------------------------------------------------------------------


def test_upstream_mode_loads_no_model(front_settings, make_front, embedder):
    url = closed_port_url()
    with pytest.raises(ModelError, match="not a directory"):  # the model path is not loadable
        create_app(front_settings(None), embedder=embedder)
    app = make_front(url)
    assert app.state.pipeline.engine is None
    assert app.state.pipeline.chunk_cache is None
    with TestClient(app) as client:
        assert client.get("/health").json() == {"status": "ok", "upstream": url}


def test_documents_cannot_be_stored_ahead_in_upstream_mode(make_front):
    with TestClient(make_front(closed_port_url())) as client:
        r = client.post("/v1/blendcache/documents", json={"documents": DOCS})
    assert r.status_code == 400
    assert r.json() == {"error": {
        "message": "the chunk cache is off on this server ([blend] enabled; upstream mode has "
                   "none)", "type": "invalid_request_error", "param": None,
        "code": "chunk_cache_disabled"}}


# -- forwarded, then a semantic hit ---------------------------------------------------------------


def test_a_miss_is_forwarded_and_the_same_question_then_never_reaches_the_upstream(
        upstream_url, make_front):
    direct = httpx.post(f"{upstream_url}/chat/completions", json=ask()).json()
    with TestClient(make_front(upstream_url)) as client:
        miss = client.post(URL, json=ask())
        hit = client.post(URL, json=ask())
    assert upstream_requests(upstream_url) == 2  # direct + the miss; never the hit
    text = direct["choices"][0]["message"]["content"]
    assert text.strip()
    assert miss.status_code == 200
    assert miss.headers["x-blendcache-cache"] == "miss"
    body = miss.json()
    assert body["model"] == "tiny-llama"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": text}
    assert body["choices"][0]["finish_reason"] == direct["choices"][0]["finish_reason"]
    assert body["usage"] == direct["usage"]
    assert set(body["blendcache"]) == {"cache", "category", "path", "ttft_ms", "entry_id"}
    assert (body["blendcache"]["cache"], body["blendcache"]["path"]) == ("miss", "upstream")
    assert hit.headers["x-blendcache-cache"] == "semantic-hit"
    replay = hit.json()
    assert replay["choices"][0]["message"]["content"] == text
    assert replay["choices"][0]["finish_reason"] == direct["choices"][0]["finish_reason"]
    completion = direct["usage"]["completion_tokens"]
    assert replay["usage"] == {"prompt_tokens": 0, "completion_tokens": completion,
                               "total_tokens": completion}
    assert replay["blendcache"]["cache"] == "semantic-hit"
    assert "path" not in replay["blendcache"]


def test_a_text_completion_is_forwarded_then_a_semantic_hit(upstream_url, make_front):
    """POST /v1/completions goes to the upstream's /completions, the prompt as is with the
    documents before it, streamed or not; the same prompt then never reaches the upstream."""
    prompt = {"model": "tiny-llama", "prompt": "The capital of France is", "max_tokens": 6}
    other = "The highest mountain in Japan is"
    direct = httpx.post(f"{upstream_url}/completions", json=prompt).json()
    with TestClient(make_front(upstream_url)) as client:
        miss = client.post("/v1/completions", json=prompt)
        hit = client.post("/v1/completions", json=prompt)
        with client.stream("POST", "/v1/completions", json={
                **prompt, "prompt": other, "stream": True, "documents": DOCS}) as r:
            assert r.headers["x-blendcache-cache"] == "miss"
            streamed = events(r.iter_lines())
    with httpx.stream("POST", f"{upstream_url}/completions", json={
            **prompt, "stream": True,
            "prompt": "".join(format_document(d) for d in DOCS) + other}) as r:
        direct_stream = events(r.iter_lines())
    assert upstream_requests(upstream_url) == 4  # 2 direct, the miss, the streamed miss
    text = direct["choices"][0]["text"]
    assert text.strip()
    body = miss.json()
    assert (body["object"], body["choices"][0]["text"]) == ("text_completion", text)
    assert (body["blendcache"]["cache"], body["blendcache"]["path"]) == ("miss", "upstream")
    assert hit.json()["choices"][0]["text"] == text
    assert hit.json()["blendcache"]["cache"] == "semantic-hit"
    texts = [c["choices"][0]["text"] for c in streamed[:-1] if c["choices"]]
    assert "".join(texts) == "".join(c["choices"][0]["text"] for c in direct_stream[:-1]
                                     if c["choices"])
    assert streamed[-1] == "[DONE]"


def test_a_stream_is_forwarded_chunk_by_chunk(upstream_url, make_front):
    usage = {"stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{upstream_url}/chat/completions", json=ask(**usage)) as r:
        direct = events(r.iter_lines())
    with TestClient(make_front(upstream_url)) as client:
        with client.stream("POST", URL, json=ask(**usage)) as r:
            assert r.status_code == 200
            assert r.headers["x-blendcache-cache"] == "miss"
            forwarded = events(r.iter_lines())
        hit = client.post(URL, json=ask()).json()
    assert upstream_requests(upstream_url) == 2
    assert len(pieces(direct)) > 1
    assert pieces(forwarded) == pieces(direct)  # the same chunks, one for one
    assert forwarded[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    finish, usage_chunk, done = forwarded[-3:]
    assert finish["choices"][0]["finish_reason"] == direct[-3]["choices"][0]["finish_reason"]
    assert (finish["blendcache"]["cache"], finish["blendcache"]["path"]) == ("miss", "upstream")
    assert usage_chunk["usage"] == direct[-2]["usage"]
    assert done == "[DONE]"
    assert hit["blendcache"]["cache"] == "semantic-hit"
    assert hit["choices"][0]["message"]["content"] == "".join(pieces(direct))


def test_documents_go_upstream_in_the_last_user_message(upstream_url, make_front):
    rendered = "".join(format_document(d) for d in DOCS) + QUESTION
    direct = httpx.post(f"{upstream_url}/chat/completions", json=ask(rendered)).json()
    with TestClient(make_front(upstream_url)) as client:
        body = client.post(URL, json=ask(documents=DOCS)).json()
    assert body["choices"][0]["message"]["content"] == direct["choices"][0]["message"]["content"]
    assert body["usage"] == direct["usage"]
    # no fusion
    assert set(body["blendcache"]) == {"cache", "category", "path", "ttft_ms", "entry_id"}
    assert body["blendcache"]["path"] == "upstream"


def test_the_semantic_layer_works_as_in_local_mode(upstream_url, make_front):
    tenants = (TenantConfig("team-a", api_keys=("sk-a",)),
               TenantConfig("team-b", api_keys=("sk-b",)))
    front = make_front(upstream_url, tenants=tenants, auth=AuthConfig(admin_token="sk-admin"))
    with TestClient(front) as client:
        def outcome(key: str, **fields) -> str:
            r = client.post(URL, json=ask(**fields), headers={"authorization": f"Bearer {key}"})
            assert r.status_code == 200
            return r.headers["x-blendcache-cache"]

        assert [outcome("sk-a"), outcome("sk-a"), outcome("sk-b"), outcome("sk-b")] == [
            "miss", "semantic-hit", "miss", "semantic-hit"]  # per tenant
        assert outcome("sk-a", blendcache={"cache": "off"}) == "miss"
        assert outcome("sk-a", blendcache={"cache": "refresh"}) == "miss"
        assert outcome("sk-a") == "semantic-hit"
        team_a = client.get("/v1/blendcache/stats", headers={"authorization": "Bearer sk-a"})
        admin = client.get("/v1/blendcache/stats", headers={"authorization": "Bearer sk-admin"})
    assert upstream_requests(upstream_url) == 4
    assert team_a.json() == {
        "tenant": "team-a", "requests": 5, "outcomes": {"miss": 3, "semantic-hit": 2},
        "categories": {"default": 4, "none": 1}, "tokens_reused": 0, "tokens_recomputed": 0,
        "semantic_cache": {"entries": {"default/tiny-llama": 1}}}
    assert admin.json()["requests"] == {"requests": 7, "semantic_hits": 3, "semantic_misses": 3}
    assert "chunk_cache" not in admin.json()


def test_a_cached_upstream_answer_is_not_cut_to_a_smaller_limit(upstream_url, make_front):
    """An upstream's answer has no token ids here: a request with another limit is forwarded,
    and its answer replaces the cached one."""
    with TestClient(make_front(upstream_url)) as client:
        first = client.post(URL, json=ask())
        shorter = client.post(URL, json=ask(max_tokens=MAX_TOKENS // 2))
        again = client.post(URL, json=ask(max_tokens=MAX_TOKENS // 2))
    assert first.json()["choices"][0]["finish_reason"] == "length"  # the tiny model rambles
    assert [r.headers["x-blendcache-cache"] for r in (first, shorter, again)] == [
        "miss", "miss", "semantic-hit"]
    assert shorter.json()["usage"]["completion_tokens"] == MAX_TOKENS // 2
    assert again.json()["choices"][0]["message"] == shorter.json()["choices"][0]["message"]
    assert upstream_requests(upstream_url) == 2


@pytest.mark.parametrize("answer,max_tokens,requested,serves", [
    (CachedAnswer("a b", "stop", (), 5), 256, None, True),   # complete, no limit asked
    (CachedAnswer("a b", "stop", (), 5), 5, 5, True),        # complete within the limit
    (CachedAnswer("a b", "stop", (), 5), 4, 4, False),       # longer than the limit: no cut
    (CachedAnswer("a b", "stop", (), None), 4, 4, False),    # length unknown
    (CachedAnswer("a b", "stop", (), None), 256, None, True),
    (CachedAnswer("a b", "length", (), 8), 8, 8, True),      # cut at exactly this limit
    (CachedAnswer("a b", "length", (), 8), 16, 16, False),   # cut before it
    (CachedAnswer("a b", "length", (), 8), 4, 4, False),     # would need a cut
    (CachedAnswer("a b", "length", (), 8), 256, None, False),
    (CachedAnswer("a b", "length", (1, 2, 3), None), 2, 2, True),   # local: cut to fit
    (CachedAnswer("a b", "length", (1, 2, 3), None), 4, 4, False),
])
def test_when_a_cached_answer_serves(answer, max_tokens, requested, serves):
    assert _serves(answer, max_tokens, requested=requested) is serves


def test_a_cached_answer_keeps_the_upstream_length_in_json():
    answer = CachedAnswer("Paris.", "stop", (), 3)
    assert CachedAnswer.from_json(answer.to_json()) == answer
    local = CachedAnswer("Paris.", "stop", (7, 8))
    assert json.loads(local.to_json()) == {"text": "Paris.", "finish_reason": "stop",
                                           "token_ids": [7, 8]}


# -- the request as the upstream gets it ----------------------------------------------------------


def test_the_forwarded_body_keeps_the_openai_fields_and_drops_ours():
    upstream = Upstream(UpstreamConfig(url="http://127.0.0.1:1/v1", model="served-name"))
    request = ChatCompletionRequest.model_validate({
        "model": "tiny-llama", "max_tokens": 5, "temperature": 0.5, "seed": 3, "stop": ["\n"],
        "stream": True, "logit_bias": {"42": -100}, "user": "u1",
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
        "documents": [DOCS[0], {"id": "d2", "text": DOCS[1]}],
        "blendcache": {"category": "faq"}})
    miss = Miss(ChatJob(request, tenant="default"), [], [format_document(d) for d in DOCS],
                SamplingParams(), None)
    assert upstream.request_body(miss) == {
        "model": "served-name", "max_tokens": 5, "temperature": 0.5, "seed": 3, "stop": ["\n"],
        "stream": True, "stream_options": {"include_usage": True}, "user": "u1",
        "logit_bias": {"42": -100},
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "".join(format_document(d) for d in DOCS)
                      + QUESTION}]}
    upstream.close()


# -- failures -------------------------------------------------------------------------------------


def test_an_upstream_that_is_down_is_a_502_in_openai_shape(make_front):
    url = closed_port_url()
    with TestClient(make_front(url)) as client:
        plain = client.post(URL, json=ask())
        streamed = client.post(URL, json=ask(stream=True))
        models = client.get("/v1/models")
    expected = upstream_error(f"cannot connect to the upstream at {url}", "upstream_unreachable")
    for r in (plain, streamed, models):
        assert r.status_code == 502
        assert r.json() == expected


def test_an_upstream_too_slow_is_a_504(upstream_url, make_front, tiny_engine):
    # The upstream waits for its model, which the test holds.
    with TestClient(make_front(upstream_url, read_timeout_s=0.5)) as client, tiny_engine.lock:
        plain = client.post(URL, json=ask())
        streamed = client.post(URL, json=ask(stream=True))
    expected = upstream_error(f"the upstream at {upstream_url} did not answer within 0.5 s",
                              "upstream_timeout")
    for r in (plain, streamed):
        assert r.status_code == 504
        assert r.json() == expected


def test_an_upstream_4xx_is_passed_through_with_its_body(upstream_url, make_front):
    unknown = ask(model="no-such-model")
    direct = httpx.post(f"{upstream_url}/chat/completions", json=unknown)
    with TestClient(make_front(upstream_url)) as client:
        plain = client.post(URL, json=unknown)
        streamed = client.post(URL, json={**unknown, "stream": True})
        after = client.post(URL, json=ask())
    expected = {"error": {"message": "model 'no-such-model' does not exist; this server serves "
                                     "'tiny-llama'", "type": "not_found_error", "param": "model",
                          "code": "model_not_found"}}
    assert direct.status_code == 404 and direct.json() == expected
    for r in (plain, streamed):
        assert r.status_code == 404
        assert r.json() == expected
    assert after.headers["x-blendcache-cache"] == "miss"  # nothing was cached


def test_the_upstream_key_comes_from_the_named_environment_variable(make_upstream_url, tmp_path,
                                                                    embedder):
    url = make_upstream_url((TenantConfig("front", api_keys=("sk-upstream",)),))

    def front(key: str):
        settings = load_settings(environ={"UPSTREAM_KEY": key}, overrides={
            "storage": {"data_dir": str(tmp_path / key)},
            "model": {"path": str(tmp_path / "no-such-model")},
            "upstream": {"url": url, "api_key_env": "UPSTREAM_KEY"}})
        assert settings.upstream.api_key == key
        return TestClient(create_app(settings, embedder=embedder))

    with front("sk-upstream") as client:
        assert client.post(URL, json=ask()).status_code == 200
    with front("sk-wrong") as client:
        refused = client.post(URL, json=ask())
    assert refused.status_code == 401
    assert refused.json() == {"error": {"message": "invalid API key",
                                        "type": "authentication_error", "param": None,
                                        "code": "invalid_api_key"}}


class _BreaksOff(httpx.BaseTransport):
    """httpx's transport to the real upstream, except that a streamed answer's connection
    drops after its first ``max_bytes`` bytes."""

    def __init__(self, max_bytes: int):
        self.inner = httpx.HTTPTransport()
        self.max_bytes = max_bytes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not json.loads(request.content).get("stream"):
            return response
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_Dropped(response.stream, self.max_bytes))

    def close(self) -> None:
        self.inner.close()


class _Dropped(httpx.SyncByteStream):
    def __init__(self, stream, max_bytes: int):
        self.stream, self.left = stream, max_bytes

    def __iter__(self):
        for data in self.stream:
            if len(data) >= self.left:
                yield data[:self.left]
                raise httpx.ReadError("connection reset by peer")
            self.left -= len(data)
            yield data

    def close(self) -> None:
        self.stream.close()


@pytest.fixture
def no_cyclic_gc():
    """The garbage collector off for the test: what only it would free stays held."""
    import gc

    gc.disable()
    yield
    gc.enable()


def test_a_stream_that_breaks_off_ends_with_an_error_event_and_is_not_cached(
        upstream_url, make_front, no_cyclic_gc):
    """Also the upstream's side: a local server whose client went away mid-stream releases its
    model at once (routes/chat.py, ``_closed_at_the_end``), so the next request is answered."""
    # The upstream's first event (its role chunk) is about 220 bytes: the drop comes within
    # its first text chunk.
    with TestClient(make_front(upstream_url, transport=_BreaksOff(max_bytes=300),
                                read_timeout_s=10)) as client:
        with client.stream("POST", URL, json=ask(stream=True)) as r:
            assert r.status_code == 200
            broken = events(r.iter_lines())
        after = client.post(URL, json=ask())
    assert broken[-1] == upstream_error(
        f"the connection to the upstream at {upstream_url} broke off", "upstream_connection_error")
    assert "[DONE]" not in broken
    assert after.headers["x-blendcache-cache"] == "miss"
    assert upstream_requests(upstream_url) == 2


# -- configuration --------------------------------------------------------------------------------


def test_serve_flags_set_the_upstream(monkeypatch):
    from blendcache.cli import build_parser, settings_from_args

    monkeypatch.setenv("MY_UPSTREAM_KEY", "sk-1")
    args = build_parser().parse_args([
        "serve", "--upstream", "http://gpu-box:8000/v1", "--upstream-key-env", "MY_UPSTREAM_KEY",
        "--upstream-model", "Qwen2.5-7B-Instruct"])
    upstream = settings_from_args(args).upstream
    assert (upstream.url, upstream.api_key, upstream.model) == (
        "http://gpu-box:8000/v1", "sk-1", "Qwen2.5-7B-Instruct")
    assert "sk-1" not in repr(upstream)


@pytest.mark.parametrize("upstream,environ,match", [
    ({"url": "http://h/v1", "api_key_env": "NOPE"}, {},
     r"\[upstream\] api_key_env names NOPE, which is not set"),
    ({"url": "http://h/v1", "api_key_env": "K", "api_key": "sk"}, {"K": "sk"},
     r"\[upstream\] sets both api_key and api_key_env"),
    ({"url": "gpu-box:8000/v1"}, {}, "upstream.url must be an http"),
    ({"url": "http://h/v1", "read_timeout_s": 0}, {}, "must be > 0"),
])
def test_bad_upstream_settings_are_config_errors(upstream, environ, match):
    with pytest.raises(ConfigError, match=match):
        load_settings(environ=environ, overrides={"upstream": upstream})


# -- the openai client, unchanged -----------------------------------------------------------------


def test_the_openai_client_works_unchanged_in_upstream_mode(upstream_url, make_front):
    import openai

    rendered = "".join(format_document(d) for d in DOCS) + QUESTION
    with_docs = httpx.post(f"{upstream_url}/chat/completions", json=ask(rendered)).json()
    with serving(make_front(upstream_url)) as front:
        client = openai.OpenAI(base_url=f"{front}/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["tiny-llama"]
        messages = [{"role": "user", "content": QUESTION}]
        reply = client.chat.completions.create(model="tiny-llama", messages=messages,
                                               max_tokens=MAX_TOKENS)
        stream = client.chat.completions.create(
            model="tiny-llama", messages=messages, max_tokens=MAX_TOKENS, stream=True,
            extra_body={"blendcache": {"cache": "off"}})
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        hit = client.chat.completions.create(model="tiny-llama", messages=messages,
                                             max_tokens=MAX_TOKENS)
        documents = client.chat.completions.create(model="tiny-llama", messages=messages,
                                                   max_tokens=MAX_TOKENS,
                                                   extra_body={"documents": DOCS,
                                                               "blendcache": {"cache": "off"}})
        with pytest.raises(openai.NotFoundError) as info:
            client.chat.completions.create(model="no-such-model", messages=messages)
    assert streamed == reply.choices[0].message.content
    assert reply.model_extra["blendcache"]["path"] == "upstream"
    assert hit.model_extra["blendcache"]["cache"] == "semantic-hit"
    assert hit.choices[0].message.content == reply.choices[0].message.content
    assert documents.choices[0].message.content == with_docs["choices"][0]["message"]["content"]
    assert info.value.status_code == 404
    assert upstream_requests(upstream_url) == 4  # with_docs, reply, stream, documents
