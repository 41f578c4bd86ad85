"""RAG requests with ``documents`` through the HTTP API: chunk KVs stored, then reused."""

import pytest
from fastapi.testclient import TestClient

from blendcache.config import BlendConfig

pytestmark = pytest.mark.model

DOCS = ["The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        {"id": "fuji", "text": "Mount Fuji is the highest mountain in Japan."}]


def ask(**extra):
    # The semantic answer cache is off: these tests exercise the chunk layer on every request.
    return {"model": "SmolLM2-135M-Instruct", "max_tokens": 12, "documents": DOCS,
            "messages": [{"role": "user", "content": "When was the Eiffel Tower completed?"}],
            "blendcache": {"cache": "off", **extra.pop("blendcache", {})}, **extra}


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
    assert info["ttft_ms"] > 0
    assert 0 < info["tokens_recomputed"] < 40


def test_ratio_one_answers_like_a_full_prefill(make_app, make_settings):
    def answer(settings, **extra):
        with TestClient(make_app(settings)) as c:
            return c.post("/v1/chat/completions", json=ask(**extra)).json()

    plain = answer(make_settings(blend=BlendConfig(enabled=False)))
    assert "blendcache" not in plain or "chunks_total" not in plain["blendcache"]
    # Fused even on the first request (nothing stored yet): no share of missing chunks is
    # too large.
    fused = answer(make_settings(blend=BlendConfig(max_missing_share=1.0)),
                   blendcache={"recompute_ratio": 1.0})
    assert fused["blendcache"]["chunks_reused"] == 0
    assert fused["blendcache"]["recompute_ratio"] == 1.0
    assert fused["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]


def test_streamed_blend_response_carries_the_header(client):
    client.post("/v1/chat/completions", json=ask())
    with client.stream("POST", "/v1/chat/completions", json=ask(stream=True)) as r:
        assert r.headers["x-blendcache-cache"] == "blend"
        assert any("[DONE]" in line for line in r.iter_lines())


@pytest.mark.parametrize("documents", [[{"text": 3}], [{"id": "x"}], "not a list",
                                       [{"text": "a", "extra": 1}]])
def test_bad_documents_are_400(client, documents):
    r = client.post("/v1/chat/completions", json=ask(documents=documents))
    assert r.status_code == 400
    assert r.json()["error"]["param"].startswith("documents")


def test_bad_recompute_ratio_is_400(client):
    r = client.post("/v1/chat/completions", json=ask(blendcache={"recompute_ratio": 2}))
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "blendcache.recompute_ratio"


def test_a_cold_request_is_a_full_prefill_and_its_chunks_are_stored_after(make_app,
                                                                          make_settings):
    with TestClient(make_app(make_settings(blend=BlendConfig(enabled=False)))) as c:
        plain = c.post("/v1/chat/completions", json=ask()).json()
    app = make_app()
    pipeline = app.state.pipeline
    with TestClient(app) as c:
        with c.stream("POST", "/v1/chat/completions", json=ask(stream=True)) as r:
            assert r.headers["x-blendcache-cache"] == "miss"
            body = "".join(r.iter_lines())
        # The stream carried the full prefill's answer; the store came after it.
        text = plain["choices"][0]["message"]["content"]
        assert '"chunks_deferred": 2' in body and text.split()[0] in body
        assert pipeline.chunk_cache.plan(_layout(pipeline), "default").missing == ()
        again = c.post("/v1/chat/completions", json=ask())
    assert again.headers["x-blendcache-cache"] == "blend"
    assert again.json()["blendcache"]["chunks_reused"] == 2
    assert pipeline.metrics["chunks_deferred"] == 2


def test_a_mostly_warm_request_is_fused_and_stores_its_new_chunk_within(client):
    client.post("/v1/chat/completions", json=ask())  # stores both documents
    more = DOCS + ["Fuji last erupted in 1707."]  # far under the missing-share limit
    r = client.post("/v1/chat/completions", json=ask(documents=more))
    info = r.json()["blendcache"]
    assert r.headers["x-blendcache-cache"] == "blend"
    assert (info["chunks_reused"], info["chunks_total"]) == (2, 3)
    assert "chunks_deferred" not in info


def test_documents_stored_ahead_are_fused_on_the_first_request(client):
    warmed = client.post("/v1/blendcache/documents", json={
        "model": "SmolLM2-135M-Instruct", "documents": DOCS})
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
        make_app, make_settings, engine):
    from blendcache.chunk_cache.warm import warm
    from blendcache.middleware.app import build_chunk_cache

    settings = make_settings()
    with TestClient(make_app(settings)) as c:
        # as `blendcache warm` would, with its own tiers over the same data directory
        warm(build_chunk_cache(settings, engine), [d if isinstance(d, str) else d["text"]
                                                    for d in DOCS], namespace="default")
        r = c.post("/v1/chat/completions", json=ask())
    assert r.headers["x-blendcache-cache"] == "blend"
    assert r.json()["blendcache"]["chunks_reused"] == 2


def _layout(pipeline):
    from blendcache.recompute.prefill import build_layout, format_document

    body = ask()
    texts = [d if isinstance(d, str) else d["text"] for d in body["documents"]]
    return build_layout(pipeline.engine, body["messages"], [format_document(t) for t in texts])


class BrokenTier:
    """A tier whose backing store has failed (as a full disk or a dead Redis would)."""

    name = "broken"

    def __init__(self):
        from blendcache.storage.blobs.base import TierStats

        self.stats = TierStats()

    def get_many(self, keys):
        from blendcache.errors import StorageError

        raise StorageError("disk is gone")

    def __contains__(self, key):
        from blendcache.errors import StorageError

        raise StorageError("disk is gone")


def test_a_failing_chunk_cache_degrades_to_a_plain_model_call(make_app, make_settings):
    settings = make_settings(blend=BlendConfig(enabled=False))
    with TestClient(make_app(settings)) as c:
        plain = c.post("/v1/chat/completions", json=ask()).json()
    app = make_app()
    pipeline = app.state.pipeline
    pipeline.chunk_cache.tiers = [BrokenTier()]
    with TestClient(app) as c:
        r = c.post("/v1/chat/completions", json=ask())
    assert r.status_code == 200
    assert r.headers["x-blendcache-cache"] == "miss"
    assert r.json()["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]
    assert pipeline.metrics["cache_failures_chunk"] == 1


class UnwritableTier(BrokenTier):
    """A tier that reads (empty) but cannot write, as a full disk."""

    name = "unwritable"

    def get_many(self, keys):
        return {}

    def __contains__(self, key):
        return False

    def put_many(self, items):
        from blendcache.errors import StorageError

        raise StorageError("no space left on device")


def test_a_failing_store_after_the_response_loses_nothing_already_sent(make_app):
    app = make_app()
    pipeline = app.state.pipeline
    pipeline.chunk_cache.tiers = [UnwritableTier()]
    with TestClient(app) as c:
        r = c.post("/v1/chat/completions", json=ask())
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    assert r.json()["blendcache"]["chunks_deferred"] == 2
    assert pipeline.metrics["cache_failures_chunk"] == 1


def test_stats_and_metrics_count_both_layers(client):
    client.post("/v1/chat/completions", json=ask())
    client.post("/v1/chat/completions", json=ask())
    stats = client.get("/v1/blendcache/stats").json()
    assert stats["requests"]["chunks_reused"] == 2 and stats["requests"]["chunks_total"] == 4
    tiers = stats["chunk_cache"]["tiers"]
    assert tiers["memory"]["hits"] == 3  # prefix + 2 chunks on the second request
    assert stats["chunk_cache"]["stored"]["chunks"] == 4  # prefix, background, 2 chunks
    text = client.get("/metrics").text
    assert 'blendcache_chunk_tier_hits{tier="memory"} 3' in text
    assert "blendcache_requests_total 2" in text


def test_check_layers_beyond_the_model_refuse_to_start(make_app, make_settings, engine):
    from blendcache.errors import ConfigError

    layers = engine.spec.num_layers
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
        assert info["chunks_reused"] == 2
        recomputed[layers] = info["tokens_recomputed"]
    assert 0 < recomputed[(2, 8)] < recomputed[(2,)]
