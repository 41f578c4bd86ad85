"""The error-rate guarantee through the HTTP API on the tiny model: explorations in a bounded
category, and POST /v1/blendcache/feedback {id, correct} on served semantic hits (scoped to the
caller's tenant, 400/404 in OpenAI's shape)."""

import pytest
from fastapi.testclient import TestClient

from blendcache.config import CategoryConfig, SemanticConfig, TenantConfig

URL = "/v1/chat/completions"
FEEDBACK = "/v1/blendcache/feedback"
ACME, GLOBEX = "sk-acme-0123", "sk-globex-4567"
TENANTS = (TenantConfig("acme", api_keys=(ACME,)), TenantConfig("globex", api_keys=(GLOBEX,)))
QUESTION = "What is the capital of France?"


def ask(content=QUESTION, **extra):
    return {"model": "default", "max_tokens": 6,
            "messages": [{"role": "user", "content": content}], **extra}


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def bounded(**overrides) -> SemanticConfig:
    return SemanticConfig(categories=(CategoryConfig(
        name="default", max_error_rate=0.05, audit_rate=0.0, **overrides),))


@pytest.fixture
def keyed(make_app, make_settings):
    with TestClient(make_app(make_settings(tenants=TENANTS))) as c:
        yield c


def served_hit(c, key=ACME) -> dict:
    c.post(URL, json=ask(), headers=bearer(key))
    body = c.post(URL, json=ask(), headers=bearer(key)).json()
    assert body["blendcache"]["cache"] == "semantic-hit"
    return body


def test_feedback_on_a_served_hit_is_recorded_once(keyed):
    body = served_hit(keyed)
    assert body["blendcache"]["feedback_id"] == body["id"]
    r = keyed.post(FEEDBACK, json={"id": body["id"], "correct": False}, headers=bearer(ACME))
    assert (r.status_code, r.json()) == (200, {
        "object": "blendcache.feedback", "id": body["id"], "correct": False,
        "entry_id": body["blendcache"]["entry_id"], "category": "default"})
    again = keyed.post(FEEDBACK, json={"id": body["id"], "correct": True}, headers=bearer(ACME))
    assert (again.status_code, again.json()["error"]["code"]) == (404, "response_not_found")
    pipeline = keyed.app.state.pipeline
    assert (pipeline.metrics["semantic_feedback"], pipeline.metrics["semantic_feedback_wrong"]) \
        == (1, 1)
    assert pipeline.semantic.stats().guarantee["default"]["feedback_wrong"] == 1
    assert "blendcache_semantic_feedback_wrong_total 1.0" in keyed.app.state.metrics \
        .exposition()[0].decode()


def test_a_tenant_gives_feedback_on_its_own_responses_only(keyed):
    body = served_hit(keyed, ACME)
    r = keyed.post(FEEDBACK, json={"id": body["id"], "correct": True}, headers=bearer(GLOBEX))
    assert r.status_code == 404
    assert r.json()["error"] == {
        "message": f"no served semantic hit {body['id']!r} awaits feedback (unknown, already "
                   f"judged, or too old)", "type": "not_found_error", "param": "id",
        "code": "response_not_found"}
    r = keyed.post(FEEDBACK, json={"id": body["id"], "correct": True}, headers=bearer(ACME))
    assert r.status_code == 200
    assert keyed.post(FEEDBACK, json={"id": "x", "correct": True}).status_code == 401


@pytest.mark.parametrize("payload", [{"id": "chatcmpl-1"}, {"correct": True},
                                     {"id": "chatcmpl-1", "correct": "yes"},
                                     {"id": "", "correct": True},
                                     {"id": "chatcmpl-1", "correct": True, "note": "x"}])
def test_bad_feedback_bodies_are_400(client, payload):
    r = client.post(FEEDBACK, json=payload)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_a_miss_is_no_hit_to_judge(client):
    miss = client.post(URL, json=ask()).json()
    assert "feedback_id" not in miss["blendcache"]
    r = client.post(FEEDBACK, json={"id": miss["id"], "correct": True})
    assert r.status_code == 404


def test_a_bounded_category_explores_before_it_serves(make_app, make_settings):
    with TestClient(make_app(make_settings(semantic=bounded()))) as c:
        first = c.post(URL, json=ask()).json()
        explored = c.post(URL, json=ask())
        info = explored.json()["blendcache"]
        assert explored.headers["x-blendcache-cache"] == "miss"
        assert info["explored"] is True and "feedback_id" not in info
        semantic = c.app.state.pipeline.semantic
        # the tiny model answers greedily: the same (cut) answer, so they agree
        assert semantic.stats().guarantee["default"]["explore_correct"] == 1
        assert c.app.state.pipeline.metrics["semantic_explorations"] == 1
        assert first["choices"][0]["message"] == explored.json()["choices"][0]["message"]


def test_wrong_feedback_stops_a_bounded_category_serving_that_entry(make_app, make_settings):
    with TestClient(make_app(make_settings(semantic=bounded()))) as c:
        semantic = c.app.state.pipeline.semantic
        for i in range(200):  # the category's evidence: 200 right at 0.5
            semantic.guarantee.record(tenant="default", category="default", entry_id=10_000 + i,
                                      score=0.5, correct=True, source="explore")
        first = c.post(URL, json=ask()).json()
        for _ in range(2):
            body = c.post(URL, json=ask()).json()
            assert body["blendcache"]["cache"] == "semantic-hit"
            r = c.post(FEEDBACK, json={"id": body["blendcache"]["feedback_id"],
                                       "correct": False})
            assert r.json()["entry_id"] == first["blendcache"]["entry_id"]
        # 2 wrong of 202 keep the category's bound; the entry, 2 of 2 wrong, is vetoed
        after = c.post(URL, json=ask()).json()["blendcache"]
        assert after["cache"] == "miss" and "explored" not in after
        assert c.post(URL, json=ask(QUESTION + " Answer briefly.")).json()["blendcache"][
            "cache"] == "miss"
