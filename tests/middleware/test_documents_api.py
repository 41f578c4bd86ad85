"""RAG requests with ``documents`` through the HTTP API: chunk KVs stored, then reused.

On the tiny random-weight model: these tests check which path answered (headers, the
``blendcache`` object, counters), and that a fused answer at ratio 1 is the full prefill's. The
pipeline's choices are pinned down one by one in test_pipeline.py."""

import json

import pytest
from fastapi.testclient import TestClient

from blendcache.config import BlendConfig
from blendcache.recompute.select import budget, schedule

DOCS = ["The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        {"id": "fuji", "text": "Mount Fuji is the highest mountain in Japan."}]


def ask(**extra):
    # The semantic answer cache is off: these tests exercise the chunk layer on every request.
    return {"model": "tiny-llama", "max_tokens": 4, "documents": DOCS,
            "messages": [{"role": "user", "content": "When was the Eiffel Tower completed?"}],
            "blendcache": {"cache": "off", **extra.pop("blendcache", {})}, **extra}


def text_of(response) -> str:
    return response.json()["choices"][0]["message"]["content"]


def streamed(body: str) -> tuple[str, dict]:
    """The text and the final ``blendcache`` object of a server-sent event stream."""
    chunks = [json.loads(line.removeprefix("data: ")) for line in body.split("\n\n")
              if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    return text, chunks[-1]["blendcache"]


def test_documents_are_reused_on_the_second_request(client):
    first = client.post("/v1/chat/completions", json=ask())
    assert first.status_code == 200, first.text
    assert first.headers["x-blendcache-cache"] == "miss"
    assert first.json()["blendcache"]["chunks_reused"] == 0
    # Both chunks were missing: a full prefill answered, the chunks were stored afterwards.
    assert first.json()["blendcache"]["chunks_deferred"] == 2
    second = client.post("/v1/chat/completions", json=ask())
    info = second.json()["blendcache"]
    assert second.headers["x-blendcache-cache"] == "blend"
    assert (info["chunks_reused"], info["chunks_total"]) == (2, 2)
    assert info["recompute_ratio"] == 0.15
    chunk_tokens = sum(len(c) for c in _layout(client.app.state.pipeline).chunks)
    assert info["tokens_recomputed"] == budget(chunk_tokens, schedule(0.15, (2, 8), 9)[-1])


def test_ratio_one_answers_like_a_full_prefill(make_app, make_settings):
    def answer(settings, **extra):
        with TestClient(make_app(settings)) as c:
            return c.post("/v1/chat/completions", json=ask(**extra)).json()

    plain = answer(make_settings(blend=BlendConfig(enabled=False)))
    assert "chunks_total" not in plain["blendcache"]
    # Fused even on the first request (nothing stored yet): no share of missing chunks is
    # too large.
    fused = answer(make_settings(blend=BlendConfig(max_missing_share=1.0)),
                   blendcache={"recompute_ratio": 1.0})
    assert fused["blendcache"]["chunks_reused"] == 0
    assert fused["blendcache"]["recompute_ratio"] == 1.0
    assert fused["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]
    assert fused["usage"] == plain["usage"] and plain["usage"]["completion_tokens"] == 4


def test_streamed_blend_response_carries_the_header(client):
    client.post("/v1/chat/completions", json=ask())
    r = client.post("/v1/chat/completions", json=ask(stream=True))
    assert r.headers["x-blendcache-cache"] == "blend"
    assert r.text.endswith("data: [DONE]\n\n")
    assert streamed(r.text)[1]["chunks_reused"] == 2


def test_a_cold_request_is_a_full_prefill_and_its_chunks_are_stored_after(make_app,
                                                                          make_settings):
    with TestClient(make_app(make_settings(blend=BlendConfig(enabled=False)))) as c:
        plain = text_of(c.post("/v1/chat/completions", json=ask()))
    app = make_app()
    pipeline = app.state.pipeline
    with TestClient(app) as c:
        r = c.post("/v1/chat/completions", json=ask(stream=True))
        assert r.headers["x-blendcache-cache"] == "miss"
        # The stream carried the full prefill's answer; the store came after it.
        text, info = streamed(r.text)
        assert (text, info["chunks_deferred"]) == (plain, 2)
        assert pipeline.chunk_cache.plan(_layout(pipeline), "default").missing == ()
        again = c.post("/v1/chat/completions", json=ask())
    assert again.headers["x-blendcache-cache"] == "blend"
    assert again.json()["blendcache"]["chunks_reused"] == 2
    assert pipeline.metrics["chunks_deferred"] == 2


def test_documents_stored_ahead_are_fused_on_the_first_request(client):
    warmed = client.post("/v1/blendcache/documents", json={
        "model": "tiny-llama", "documents": DOCS})
    assert warmed.status_code == 200, warmed.text
    assert warmed.json() == {"object": "blendcache.documents", "documents": 2,
                             "chunks_stored": 2, "chunks_already_stored": 0}
    r = client.post("/v1/chat/completions", json=ask())
    assert r.headers["x-blendcache-cache"] == "blend"
    assert r.json()["blendcache"]["chunks_reused"] == 2
    again = client.post("/v1/blendcache/documents", json={"documents": DOCS[:1]})
    assert again.json()["chunks_already_stored"] == 1


def test_documents_are_stored_under_the_requests_system_prompt(client):
    system = [{"role": "system", "content": "Answer in one word."}]
    client.post("/v1/blendcache/documents", json={"messages": system, "documents": DOCS})
    plain = client.post("/v1/chat/completions", json=ask())
    assert plain.json()["blendcache"]["chunks_reused"] == 0  # no system prompt: other chunks
    body = ask()
    body["messages"] = system + body["messages"]
    assert client.post("/v1/chat/completions", json=body).headers["x-blendcache-cache"] == "blend"


@pytest.mark.parametrize("body,status,param", [
    ({"documents": []}, 400, "documents"),
    ({}, 400, "documents"),
    ({"documents": [{"id": "x"}]}, 400, "documents.0"),
    ({"documents": ["a"], "extra": 1}, 400, "extra"),
    ({"model": "gpt-4", "documents": ["a"]}, 404, "model"),
])
def test_bad_documents_bodies_are_refused(client, body, status, param):
    r = client.post("/v1/blendcache/documents", json=body)
    assert r.status_code == status
    assert r.json()["error"]["param"].startswith(param)


def test_storing_documents_with_the_chunk_cache_off_is_refused(make_app, make_settings):
    with TestClient(make_app(make_settings(blend=BlendConfig(enabled=False)))) as c:
        r = c.post("/v1/blendcache/documents", json={"documents": DOCS})
    assert r.status_code == 400 and r.json()["error"]["code"] == "chunk_cache_disabled"


def test_tenants_keep_their_chunks_apart_unless_shared(make_app, make_settings):
    from blendcache.config import ServerConfig

    keys = ServerConfig(api_keys={"ka": "acme", "kb": "globex"})

    def as_(key):
        return {"authorization": f"Bearer {key}"}

    for share, globex_first in ((False, "miss"), (True, "blend")):
        settings = make_settings(server=keys,
                                 blend=BlendConfig(share_chunks_across_tenants=share))
        with TestClient(make_app(settings)) as c:
            c.post("/v1/blendcache/documents", json={"documents": DOCS}, headers=as_("ka"))
            acme = c.post("/v1/chat/completions", json=ask(), headers=as_("ka"))
            assert acme.headers["x-blendcache-cache"] == "blend"
            globex = c.post("/v1/chat/completions", json=ask(), headers=as_("kb"))
            assert globex.headers["x-blendcache-cache"] == globex_first, share


def test_documents_warmed_by_another_process_are_reused_by_a_running_server(
        make_app, make_settings, tiny_engine):
    from blendcache.chunk_cache.cache import build_chunk_cache
    from blendcache.chunk_cache.warm import warm

    settings = make_settings()
    with TestClient(make_app(settings)) as c:
        # as `blendcache warm` would, with its own tiers over the same data directory
        warm(build_chunk_cache(settings, tiny_engine), [d if isinstance(d, str) else d["text"]
                                                         for d in DOCS], namespace="default")
        r = c.post("/v1/chat/completions", json=ask())
    assert r.headers["x-blendcache-cache"] == "blend"
    assert r.json()["blendcache"]["chunks_reused"] == 2


def _layout(pipeline):
    from blendcache.chunk_cache.layout import build_layout, format_document

    body = ask()
    texts = [d if isinstance(d, str) else d["text"] for d in body["documents"]]
    return build_layout(pipeline.engine, body["messages"], [format_document(t) for t in texts])


def test_stats_and_metrics_count_both_layers(client):
    client.post("/v1/chat/completions", json=ask())
    client.post("/v1/chat/completions", json=ask())
    stats = client.get("/v1/blendcache/stats").json()
    assert (stats["requests"]["chunks_reused"], stats["requests"]["chunks_total"]) == (2, 4)
    tiers = stats["chunk_cache"]["tiers"]
    assert tiers["memory"]["hits"] == 3  # prefix + 2 chunks on the second request
    assert stats["chunk_cache"]["stored"]["chunks"] == 4  # prefix, background, 2 chunks
    text = client.get("/metrics").text  # all of it: tests/middleware/test_metrics.py
    assert 'blendcache_chunk_tier_hits_total{tier="memory"} 3.0' in text.splitlines()
    assert 'blendcache_requests_total{category="none",outcome="blend",tenant="default"} 1.0' \
        in text.splitlines()


def test_check_layers_beyond_the_model_refuse_to_start(make_app, make_settings, tiny_engine):
    from blendcache.errors import ConfigError

    layers = tiny_engine.spec.num_layers
    with pytest.raises(ConfigError, match=f"has {layers} layers"):
        make_app(make_settings(blend=BlendConfig(check_layers=(2, layers))))


def test_gradual_filtering_through_the_api(make_app, make_settings):
    """Checks at layers 2 and 8 keep fewer tokens to the end than one check at the same ratio
    (the schedule spends the same budget, more of it early)."""
    recomputed = {}
    for layers in ((2,), (2, 8)):
        with TestClient(make_app(make_settings(blend=BlendConfig(check_layers=layers)))) as client:
            client.post("/v1/chat/completions", json=ask())
            info = client.post("/v1/chat/completions", json=ask()).json()["blendcache"]
            chunk_tokens = sum(len(c) for c in _layout(client.app.state.pipeline).chunks)
        assert info["chunks_reused"] == 2
        recomputed[layers] = info["tokens_recomputed"]
    assert recomputed == {(2,): budget(chunk_tokens, 0.15),
                          (2, 8): budget(chunk_tokens, schedule(0.15, (2, 8), 9)[-1])}
    assert 0 < recomputed[(2, 8)] < recomputed[(2,)]
