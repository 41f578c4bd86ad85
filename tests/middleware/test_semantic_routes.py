"""POST /v1/blendcache/lookup and /store: the semantic cache without a model call, keyed as chat
requests are (tenant, category, context fingerprint, model namespace). On the tiny model."""

import pytest
from fastapi.testclient import TestClient

from blendcache.config import CategoryConfig, SemanticConfig, TenantConfig

LOOKUP, STORE = "/v1/blendcache/lookup", "/v1/blendcache/store"
Q = "What is the capital of France?"
CONTEXT = [{"role": "system", "content": "Answer in one word."},
           {"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}]
DOCS = ["Paris is the capital of France.", "Berlin is the capital of Germany."]


def body(query=Q, model="lc:abc", **extra):
    return {"query": query, "model": model, **extra}


def lookup(client, **fields) -> dict:
    response = client.post(LOOKUP, json=body(**fields))
    assert response.status_code == 200, response.text
    return response.json()


def store(client, answer="Paris.", **fields) -> dict:
    response = client.post(STORE, json=body(answer=answer, **fields))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_stored_answer_is_looked_up(client):
    assert lookup(client) == {"object": "blendcache.lookup", "hit": False, "entry_id": None,
                              "similarity": None, "answer": None, "category": "default",
                              "exploration_id": None, "feedback_id": None}
    assert store(client) == {"object": "blendcache.store", "entry_id": 1, "category": "default"}
    found = lookup(client)
    assert found.pop("feedback_id").startswith("lookup-")
    assert found == {"object": "blendcache.lookup", "hit": True, "entry_id": 1,
                     "similarity": 1.0, "answer": "Paris.", "category": "default",
                     "exploration_id": None}
    stats = client.app.state.pipeline.semantic.stats()
    assert (stats.lookups, stats.hits) == (2, 1)
    assert client.app.state.pipeline.metrics["requests"] == 0  # no model request


def test_context_and_documents_are_part_of_the_key(client):
    store(client, context=CONTEXT, documents=DOCS)
    assert not lookup(client)["hit"]
    assert not lookup(client, context=CONTEXT)["hit"]
    assert not lookup(client, documents=DOCS)["hit"]
    assert not lookup(client, context=CONTEXT[:1], documents=DOCS)["hit"]
    assert not lookup(client, context=CONTEXT, documents=DOCS[:1])["hit"]
    assert lookup(client, context=CONTEXT, documents=DOCS)["hit"]
    assert lookup(client, context=CONTEXT, documents=DOCS[::-1])["hit"]  # any order


def test_models_categories_and_tenants_are_namespaces(make_app, make_settings):
    semantic = SemanticConfig(categories=(CategoryConfig("default"), CategoryConfig("faq")))
    tenants = (TenantConfig("acme", api_keys=("sk-acme",)),
               TenantConfig("globex", api_keys=("sk-globex",)))
    with TestClient(make_app(make_settings(semantic=semantic, tenants=tenants))) as client:
        acme = {"authorization": "Bearer sk-acme"}
        globex = {"authorization": "Bearer sk-globex"}
        assert client.post(STORE, json=body(answer="Paris."), headers=acme).status_code == 200
        found = client.post(LOOKUP, json=body(), headers=acme).json()
        assert found["hit"] and found["category"] == "default"
        for other, headers in ((body(model="lc:def"), acme), (body(category="faq"), acme),
                               (body(), globex)):
            assert not client.post(LOOKUP, json=other, headers=headers).json()["hit"], other
        assert client.post(LOOKUP, json=body()).status_code == 401


def test_chat_and_the_routes_share_the_served_models_namespace(client):
    """``default`` (or the served model's name) is chat's namespace: an answer stored there
    serves a chat request, and a chat answer is found by a lookup."""
    store(client, answer="Paris is the capital.", model="default")
    chat = client.post("/v1/chat/completions", json={
        "model": "tiny-llama", "max_tokens": 2, "messages": [{"role": "user", "content": Q}]})
    assert chat.headers["x-blendcache-cache"] == "semantic-hit"
    # cut to max_tokens by its token ids, as the model's own answers are
    assert chat.json()["choices"][0]["finish_reason"] == "length"
    asked = "Where is the Eiffel Tower?"
    answer = client.post("/v1/chat/completions", json={
        "model": "default", "max_tokens": 4, "messages": [{"role": "user", "content": asked}]})
    found = lookup(client, query=asked, model="tiny-llama")
    assert (found["hit"], found["entry_id"]) == (True, answer.json()["blendcache"]["entry_id"])
    assert found["answer"] == answer.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("route", [LOOKUP, STORE])
@pytest.mark.parametrize("fields,param", [
    ({"query": ""}, "query"),
    ({"query": "  "}, "query"),
    ({"query": None}, "query"),
    ({"model": 3}, "model"),
    ({"context": "Hi"}, "context"),
    ({"context": [{"role": "robot", "content": "Hi"}]}, "context.0.role"),
    ({"documents": "one text"}, "documents"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_input_is_a_400_in_openais_shape(client, route, fields, param):
    answer = {"answer": "Paris."} if route == STORE else {}
    response = client.post(route, json={**body(**answer), **fields})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param or error["param"].startswith(param + "."), error


def test_a_missing_answer_an_unknown_category_and_no_semantic_cache(client, make_app,
                                                                    make_settings):
    missing = client.post(STORE, json=body())
    assert (missing.status_code, missing.json()["error"]["param"]) == (400, "answer")
    unknown = client.post(LOOKUP, json=body(category="nope"))
    assert (unknown.status_code, unknown.json()["error"]["param"]) == (400, "category")
    off = make_settings(semantic=SemanticConfig(enabled=False))
    with TestClient(make_app(off)) as plain:
        for route, fields in ((LOOKUP, body()), (STORE, body(answer="Paris."))):
            response = plain.post(route, json=fields)
            assert response.status_code == 400
            assert response.json()["error"]["code"] == "semantic_cache_disabled"


def test_a_failing_cache_is_a_miss_and_nothing_stored_not_an_error(client):
    from sqlalchemy import text

    assert store(client)["entry_id"] == 1
    pipeline = client.app.state.pipeline
    with pipeline.semantic._store.engine.begin() as conn:  # the database loses its table
        conn.execute(text("DROP TABLE semantic_entries"))
    assert lookup(client)["hit"] is False
    assert pipeline.metrics["cache_failures_semantic"] == 1
    assert store(client, answer="Lyon.")["entry_id"] is None
    assert pipeline.metrics["cache_failures_semantic"] == 2


def test_a_bounded_category_explores_and_compares_the_callers_answer(make_app, make_settings):
    semantic = SemanticConfig(categories=(
        CategoryConfig("faq", max_error_rate=0.05, audit_rate=0.0, context_sensitive=False),
        CategoryConfig("plain", context_sensitive=False)), default_category="faq")
    tenants = (TenantConfig("acme", api_keys=("sk-acme",)),
               TenantConfig("globex", api_keys=("sk-globex",)))
    with TestClient(make_app(make_settings(semantic=semantic, tenants=tenants))) as client:
        client.headers["Authorization"] = "Bearer sk-acme"
        store(client, category="faq")
        found = lookup(client, category="faq")
        assert (found["hit"], found["answer"]) == (False, None)
        assert found["exploration_id"].startswith("explore-")
        other = lookup(client, category="faq")["exploration_id"]
        # another tenant's answer never counts for acme's candidate
        globex = client.post(STORE, json=body(answer="Paris.", category="faq",
                                              exploration_id=found["exploration_id"]),
                             headers={"Authorization": "Bearer sk-globex"})
        assert globex.status_code == 200
        store(client, answer="Paris.", category="faq", exploration_id=found["exploration_id"])
        store(client, answer="Paris.", category="faq", exploration_id=found["exploration_id"])
        store(client, answer="Lyon.", category="faq", exploration_id=other)
        pipeline = client.app.state.pipeline
        guarantee = pipeline.semantic.stats().guarantee["faq"]
        assert (guarantee["explore_correct"], guarantee["explore_wrong"]) == (1, 1)
        assert pipeline.metrics["semantic_explorations_disagreed"] == 1
        # an unbounded category serves as before and explores nothing
        store(client, category="plain")
        plain = lookup(client, category="plain")
        assert (plain["hit"], plain["exploration_id"]) == (True, None)
        # a hit served by lookup takes feedback as a chat response does, once, for its tenant
        judged = {"id": plain["feedback_id"], "correct": False}
        assert client.post("/v1/blendcache/feedback", json=judged,
                           headers={"Authorization": "Bearer sk-globex"}).status_code == 404
        response = client.post("/v1/blendcache/feedback", json=judged)
        assert response.status_code == 200 and response.json()["category"] == "plain"
        assert client.post("/v1/blendcache/feedback", json=judged).status_code == 404
        assert pipeline.semantic.stats().guarantee["plain"]["feedback_wrong"] == 1
