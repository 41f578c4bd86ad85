"""Invalidation of the semantic cache through the HTTP API: DELETE /v1/blendcache/entries/{id}
and DELETE /v1/blendcache/entries?category=&tenant=, scoped to the caller's tenant (every
tenant's with the admin token), with 401/404 in OpenAI's shape. On the tiny model."""

import pytest
from fastapi.testclient import TestClient

from blendcache.config import AuthConfig, CategoryConfig, SemanticConfig, TenantConfig

URL = "/v1/chat/completions"
ENTRIES = "/v1/blendcache/entries"
ADMIN, ACME, GLOBEX = "sk-admin-0123", "sk-acme-0123", "sk-globex-4567"
TENANTS = (TenantConfig("acme", api_keys=(ACME,)), TenantConfig("globex", api_keys=(GLOBEX,)))
CATEGORIES = SemanticConfig(categories=(CategoryConfig(name="default"),
                                        CategoryConfig(name="faq")))


def ask(content="What is the capital of France?", **extra):
    return {"model": "default", "max_tokens": 6,
            "messages": [{"role": "user", "content": content}], **extra}


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def error(message, kind, *, param=None, code=None):
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@pytest.fixture
def keyed(make_app, make_settings):
    settings = make_settings(tenants=TENANTS, auth=AuthConfig(admin_token=ADMIN),
                             semantic=CATEGORIES)
    with TestClient(make_app(settings)) as c:
        yield c


def outcome(c, key, **extra) -> str:
    r = c.post(URL, json=ask(**extra), headers=bearer(key))
    assert r.status_code == 200, r.text
    return r.headers["x-blendcache-cache"]


def test_the_entry_id_of_a_response_deletes_that_answer(keyed):
    first = keyed.post(URL, json=ask(), headers=bearer(ACME)).json()["blendcache"]
    hit = keyed.post(URL, json=ask(), headers=bearer(ACME)).json()["blendcache"]
    assert (first["cache"], hit["cache"]) == ("miss", "semantic-hit")
    assert hit["entry_id"] == first["entry_id"]
    r = keyed.delete(f"{ENTRIES}/{first['entry_id']}", headers=bearer(ACME))
    assert (r.status_code, r.json()) == (200, {"object": "blendcache.entries.deleted",
                                               "deleted": 1})
    assert outcome(keyed, ACME) == "miss"
    gone = keyed.delete(f"{ENTRIES}/{first['entry_id']}", headers=bearer(ACME))
    assert (gone.status_code, gone.json()) == (404, error(
        f"no semantic cache entry {first['entry_id']}", "not_found_error", param="entry_id",
        code="entry_not_found"))


def test_a_tenant_reaches_only_its_own_entries(keyed):
    globex_entry = keyed.post(URL, json=ask(), headers=bearer(GLOBEX)).json()["blendcache"]
    outcome(keyed, ACME)
    outcome(keyed, ACME, content="Where is the Louvre?", blendcache={"category": "faq"})
    # Another tenant's entry is a 404, as one that does not exist.
    r = keyed.delete(f"{ENTRIES}/{globex_entry['entry_id']}", headers=bearer(ACME))
    assert (r.status_code, r.json()["error"]["code"]) == (404, "entry_not_found")
    r = keyed.delete(ENTRIES, params={"tenant": "globex"}, headers=bearer(ACME))
    assert (r.status_code, r.json()) == (401, error(
        "deleting another tenant's entries needs the admin token: send 'Authorization: "
        "Bearer <admin_token>'", "authentication_error", code="invalid_admin_token"))
    # By category, then the rest of the tenant's.
    r = keyed.delete(ENTRIES, params={"category": "faq"}, headers=bearer(ACME))
    assert r.json()["deleted"] == 1
    assert outcome(keyed, ACME, content="Where is the Louvre?",
                   blendcache={"category": "faq"}) == "miss"
    assert keyed.delete(ENTRIES, headers=bearer(ACME)).json()["deleted"] == 2
    assert outcome(keyed, ACME) == "miss"
    assert outcome(keyed, GLOBEX) == "semantic-hit"  # untouched


def test_the_admin_token_reaches_every_tenant(keyed):
    outcome(keyed, ACME)
    outcome(keyed, GLOBEX)
    r = keyed.delete(ENTRIES, params={"tenant": "globex"}, headers=bearer(ADMIN))
    assert r.json()["deleted"] == 1
    assert outcome(keyed, ACME) == "semantic-hit"
    assert keyed.delete(ENTRIES, headers=bearer(ADMIN)).json()["deleted"] == 1  # acme's
    assert outcome(keyed, ACME) == "miss"


@pytest.mark.parametrize("headers,code", [({}, "invalid_api_key"),
                                          (bearer("sk-wrong"), "invalid_api_key")])
def test_a_missing_or_wrong_key_is_a_401(keyed, headers, code):
    for r in (keyed.delete(ENTRIES, headers=headers), keyed.delete(f"{ENTRIES}/1",
                                                                    headers=headers)):
        assert r.status_code == 401
        assert (r.json()["error"]["type"], r.json()["error"]["code"]) == (
            "authentication_error", code)


def test_an_unknown_category_is_a_404(keyed):
    r = keyed.delete(ENTRIES, params={"category": "nope"}, headers=bearer(ACME))
    assert (r.status_code, r.json()) == (404, error(
        "unknown category 'nope'; known: default, faq", "not_found_error", param="category",
        code="category_not_found"))


def test_without_the_semantic_cache_invalidation_is_a_400(make_app, make_settings):
    from blendcache.config import SemanticConfig

    with TestClient(make_app(make_settings(semantic=SemanticConfig(enabled=False)))) as c:
        r = c.delete(ENTRIES)
    assert (r.status_code, r.json()) == (400, error(
        "the semantic cache is off on this server ([semantic] enabled)",
        "invalid_request_error", code="semantic_cache_disabled"))
