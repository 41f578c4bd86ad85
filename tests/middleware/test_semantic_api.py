"""The semantic answer cache through the HTTP API: hits, replayed streams, opt-out, refresh,
categories, tenants and restarts. Behaviour on the tiny random-weight model; the replay of a
real multi-word answer and the token limit (an answer that ends) on the real model."""

import json

import pytest
from fastapi.testclient import TestClient

from blendcache.config import CategoryConfig, SemanticConfig, ServerConfig, StorageConfig

URL = "/v1/chat/completions"


def ask(content="What is the capital of France?", **extra):
    return {"model": "default", "max_tokens": 12,
            "messages": [{"role": "user", "content": content}], **extra}


def text_of(response):
    return response.json()["choices"][0]["message"]["content"]


def test_repeat_question_is_a_semantic_hit(client):
    first = client.post(URL, json=ask())
    assert first.headers["x-blendcache-cache"] == "miss"
    second = client.post(URL, json=ask())
    assert second.headers["x-blendcache-cache"] == "semantic-hit"
    info = second.json()["blendcache"]
    assert (info["category"], info["similarity"]) == ("default", 1.0)
    assert text_of(second) == text_of(first)
    assert second.json()["usage"] == first.json()["usage"]


def test_negated_question_is_not_served_the_cached_answer(client):
    client.post(URL, json=ask("Is the city museum open on Sundays?"))
    other = client.post(URL, json=ask("Is the city museum closed on Sundays?"))
    assert other.headers["x-blendcache-cache"] == "miss"
    stats = client.app.state.pipeline.semantic.stats()
    assert (stats.rejections["negation"], sum(stats.rejections.values())) == (1, 1)


@pytest.mark.model
def test_streamed_replay_of_a_cached_answer(model_client):
    plain = text_of(model_client.post(URL, json=ask()))
    with model_client.stream("POST", URL, json=ask(stream=True)) as r:
        assert r.headers["x-blendcache-cache"] == "semantic-hit"
        lines = [ln for ln in r.iter_lines() if ln.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks]
    assert len([p for p in pieces if p]) > 1
    assert "".join(pieces) == plain
    assert chunks[-1]["blendcache"]["cache"] == "semantic-hit"


def test_opt_out_and_refresh(client):
    client.post(URL, json=ask())
    off = client.post(URL, json=ask(blendcache={"cache": "off"}))
    assert off.headers["x-blendcache-cache"] == "miss"
    refreshed = client.post(URL, json=ask(blendcache={"cache": "refresh"}))
    assert refreshed.headers["x-blendcache-cache"] == "miss"
    semantic = client.app.state.pipeline.semantic
    assert sum(semantic.stats().entries.values()) == 1  # replaced, not added
    assert client.post(URL, json=ask()).headers["x-blendcache-cache"] == "semantic-hit"


def test_categories_from_body_and_header(make_app, make_settings):
    semantic = SemanticConfig(categories=(
        CategoryConfig(name="default"), CategoryConfig(name="faq", threshold=0.8)))
    with TestClient(make_app(make_settings(semantic=semantic))) as c:
        c.post(URL, json=ask(blendcache={"category": "faq"}))
        assert c.post(URL, json=ask()).headers["x-blendcache-cache"] == "miss"  # default: empty
        hit = c.post(URL, json=ask(), headers={"x-blendcache-category": "faq"})
        assert hit.headers["x-blendcache-cache"] == "semantic-hit"
        assert hit.json()["blendcache"]["category"] == "faq"
        bad = c.post(URL, json=ask(blendcache={"category": "nope"}))
        assert bad.status_code == 400
        assert "nope" in bad.json()["error"]["message"]


def test_by_default_documents_make_the_key_context_sensitive(client):
    """A RAG answer is served again only over the same document set, in any order."""
    docs_a = ["Paris is the capital of France.", "The Seine flows through Paris."]
    docs_b = ["Lyon is a large city in France."]
    assert client.post(URL, json=ask(documents=docs_a)).headers["x-blendcache-cache"] != \
        "semantic-hit"
    reordered = client.post(URL, json=ask(documents=docs_a[::-1]))
    assert reordered.headers["x-blendcache-cache"] == "semantic-hit"
    assert client.post(URL, json=ask(documents=docs_b)).headers["x-blendcache-cache"] != \
        "semantic-hit"
    assert client.post(URL, json=ask()).headers["x-blendcache-cache"] != "semantic-hit"
    assert client.post(URL, json=ask(documents=docs_a)).headers["x-blendcache-cache"] == \
        "semantic-hit"


def test_a_category_can_opt_out_of_context_sensitivity(make_app, make_settings):
    semantic = SemanticConfig(categories=(CategoryConfig(name="default",
                                                         context_sensitive=False),))
    docs_a = ["Paris is the capital of France."]
    docs_b = ["Lyon is a large city in France."]
    with TestClient(make_app(make_settings(semantic=semantic))) as c:
        c.post(URL, json=ask(documents=docs_a))
        assert c.post(URL, json=ask(documents=docs_b)).headers["x-blendcache-cache"] == \
            "semantic-hit"
        assert c.post(URL, json=ask()).headers["x-blendcache-cache"] == "semantic-hit"


def test_tenants_never_share_answers(make_app, make_settings):
    settings = make_settings(server=ServerConfig(api_keys={"ka": "acme", "kb": "globex"}))
    with TestClient(make_app(settings)) as c:
        a = {"authorization": "Bearer ka"}
        b = {"authorization": "Bearer kb"}
        c.post(URL, json=ask(), headers=a)
        assert c.post(URL, json=ask(), headers=b).headers["x-blendcache-cache"] == "miss"
        assert c.post(URL, json=ask(), headers=a).headers["x-blendcache-cache"] == "semantic-hit"


def test_answers_survive_a_restart(make_app, make_settings, tmp_path, database_url):
    settings = make_settings(storage=StorageConfig(data_dir=str(tmp_path / "data"),
                                                   database_url=database_url))
    with TestClient(make_app(settings)) as c:
        first = text_of(c.post(URL, json=ask()))
    with TestClient(make_app(settings)) as c:
        again = c.post(URL, json=ask())
        assert again.headers["x-blendcache-cache"] == "semantic-hit"
        assert text_of(again) == first


@pytest.mark.model
def test_cached_answer_respects_the_token_limit(model_client):
    client = model_client  # the real model: an answer that ends ("stop") within 12 tokens
    first = client.post(URL, json=ask(max_tokens=3))  # cut by the limit: "length"
    assert first.json()["choices"][0]["finish_reason"] == "length"
    longer = client.post(URL, json=ask(max_tokens=12))  # a cut answer cannot serve more tokens
    assert longer.headers["x-blendcache-cache"] == "miss"
    assert longer.json()["choices"][0]["finish_reason"] == "stop"
    shorter = client.post(URL, json=ask(max_tokens=2))  # a complete answer, cut to the limit
    assert shorter.headers["x-blendcache-cache"] == "semantic-hit"
    body = shorter.json()
    assert body["usage"]["completion_tokens"] == 2
    assert body["choices"][0]["finish_reason"] == "length"
    assert text_of(longer).startswith(text_of(shorter))
    assert sum(client.app.state.pipeline.semantic.stats().entries.values()) == 1  # replaced


def test_sampled_requests_above_max_temperature_bypass_the_cache(make_app, make_settings):
    settings = make_settings(semantic=SemanticConfig(max_temperature=0.5))
    with TestClient(make_app(settings)) as c:
        hot = ask(temperature=1.0, seed=7)
        assert c.post(URL, json=hot).headers["x-blendcache-cache"] == "miss"
        assert c.post(URL, json=hot).headers["x-blendcache-cache"] == "miss"  # nothing stored
        semantic = c.app.state.pipeline.semantic
        assert sum(semantic.stats().entries.values()) == 0
        c.post(URL, json=ask(temperature=0.2, seed=1))  # at or below the limit: cached as usual
        assert c.post(URL, json=ask()).headers["x-blendcache-cache"] == "semantic-hit"
        assert c.post(URL, json=hot).headers["x-blendcache-cache"] == "miss"  # not served either
        assert c.app.state.pipeline.metrics["semantic_bypassed_sampled"] == 3

