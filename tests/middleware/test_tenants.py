"""Tenants and keys through the HTTP API: 401s in OpenAI's shape, keys that never reach a log,
namespaces and statistics that tenants never share, per-tenant quotas and chunk sharing, and
the admin token over the all-tenant views. On the tiny model."""

import logging

import pytest
from fastapi.testclient import TestClient

from blendcache.config import AuthConfig, BlendConfig, TenantConfig, load_settings
from blendcache.middleware.auth import Keyring

URL = "/v1/chat/completions"
ADMIN = "sk-admin-0123"
TENANTS = (TenantConfig("acme", api_keys=("sk-acme-0123",)),
           TenantConfig("globex", api_keys=("sk-globex-4567",)))
ACME, GLOBEX = "sk-acme-0123", "sk-globex-4567"
INVALID_KEY = {"error": {"message": "invalid API key", "type": "authentication_error",
                         "param": None, "code": "invalid_api_key"}}
MISSING_KEY = {"error": {"message": "missing API key: send 'Authorization: Bearer <key>'",
                         "type": "authentication_error", "param": None,
                         "code": "invalid_api_key"}}


def ask(content="What is the capital of France?", **extra):
    return {"model": "default", "max_tokens": 6,
            "messages": [{"role": "user", "content": content}], **extra}


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def keyed(make_app, make_settings):
    """A client of a server with the tenants acme and globex and the admin token."""
    settings = make_settings(tenants=TENANTS, auth=AuthConfig(admin_token=ADMIN))
    with TestClient(make_app(settings)) as c:
        yield c


@pytest.mark.parametrize("headers,body", [
    ({}, MISSING_KEY),
    ({"authorization": f"Basic {ACME}"}, MISSING_KEY),
    (bearer(ACME[:-1]), INVALID_KEY),  # a prefix of a key
    (bearer(ACME + "4"), INVALID_KEY),  # a key and more
    (bearer(ACME.upper()), INVALID_KEY),
    ({"authorization": "Bearer sk-acmé-0123".encode()}, INVALID_KEY),  # not ASCII: no 500
    (bearer("acme"), INVALID_KEY),  # a tenant's name is not its key
    (bearer(ADMIN), INVALID_KEY),  # the admin token is no tenant's key
])
def test_a_missing_or_wrong_key_is_a_401_in_openais_shape(keyed, headers, body):
    for response in (keyed.post(URL, json=ask(), headers=headers),
                     keyed.get("/v1/models", headers=headers),
                     keyed.post("/v1/blendcache/documents", json={"documents": ["x"]},
                                headers=headers)):
        assert (response.status_code, response.json()) == (401, body)


def test_the_keyring_keeps_digests_and_checks_every_key():
    keyring = Keyring.from_settings(load_settings(environ={
        "BLENDCACHE_TENANTS_ACME_API_KEY": ACME, "BLENDCACHE_TENANTS_GLOBEX_API_KEY": GLOBEX,
        "BLENDCACHE_AUTH_ADMIN_TOKEN": ADMIN}))
    assert [keyring.tenant(t) for t in (ACME, GLOBEX, ACME[:-1], "", "é\udcff")] == [
        "acme", "globex", None, None, None]
    assert [keyring.is_admin(t) for t in (ADMIN, ACME, ADMIN[:-1])] == [True, False, False]
    held = repr(keyring).encode() + b"".join(k for k, _ in keyring.keys) + keyring.admin
    assert not any(s.encode() in held for s in (ACME, GLOBEX, ADMIN))  # only digests


def test_keys_never_reach_the_logs(keyed, caplog):
    wrong = "sk-wrong-89ab"
    with caplog.at_level(logging.DEBUG):
        assert keyed.post(URL, json=ask(), headers=bearer(wrong)).status_code == 401
        assert keyed.post(URL, json=ask(), headers=bearer(ACME)).status_code == 200
        assert keyed.get("/metrics", headers=bearer(wrong)).status_code == 401
        assert keyed.get("/metrics", headers=bearer(ADMIN)).status_code == 200
    assert "refused /v1/chat/completions: invalid API key" in caplog.text
    assert "refused /metrics: invalid or missing admin token" in caplog.text
    for secret in (wrong, ACME, GLOBEX, ADMIN):
        assert secret not in caplog.text


def test_tenants_never_see_each_others_entries_or_stats(keyed):
    assert keyed.post(URL, json=ask(), headers=bearer(ACME)).headers["x-blendcache-cache"] == \
        "miss"
    assert keyed.post(URL, json=ask(), headers=bearer(GLOBEX)).headers["x-blendcache-cache"] == \
        "miss"  # acme's answer is not globex's
    assert keyed.post(URL, json=ask(), headers=bearer(ACME)).headers["x-blendcache-cache"] == \
        "semantic-hit"
    keyed.post(URL, json=ask("Who wrote Hamlet?"), headers=bearer(GLOBEX))
    acme = keyed.get("/v1/blendcache/stats", headers=bearer(ACME)).json()
    assert acme == {"tenant": "acme", "requests": 2,
                    "outcomes": {"miss": 1, "semantic-hit": 1}, "categories": {"default": 2},
                    "tokens_reused": 0, "tokens_recomputed": 0,
                    "semantic_cache": {"entries": {"default/tiny-llama": 1}}}
    globex = keyed.get("/v1/blendcache/stats", headers=bearer(GLOBEX)).json()
    assert globex == {"tenant": "globex", "requests": 2, "outcomes": {"miss": 2},
                      "categories": {"default": 2}, "tokens_reused": 0, "tokens_recomputed": 0,
                      "semantic_cache": {"entries": {"default/tiny-llama": 2}}}
    everyone = keyed.get("/v1/blendcache/stats", headers=bearer(ADMIN)).json()
    assert everyone["tenants"] == {"acme": {k: v for k, v in acme.items() if k != "tenant"},
                                   "globex": {k: v for k, v in globex.items() if k != "tenant"}}
    assert everyone["semantic_cache"]["entries"] == {"acme/default/tiny-llama": 1,
                                                     "globex/default/tiny-llama": 2}


def test_a_tenants_max_entries_evicts_at_its_quota(make_app, make_settings):
    tenants = (TenantConfig("acme", api_keys=(ACME,), max_entries=2), TENANTS[1])
    questions = ["What is the capital of France?", "Who wrote Hamlet?",
                 "How tall is Mount Fuji?"]
    with TestClient(make_app(make_settings(tenants=tenants))) as c:
        for key in (ACME, GLOBEX):
            for question in questions:
                assert c.post(URL, json=ask(question), headers=bearer(key)).headers[
                    "x-blendcache-cache"] == "miss"
        semantic = c.app.state.pipeline.semantic
        assert semantic.stats().entries == {("acme", "default", "tiny-llama"): 2,
                                            ("globex", "default", "tiny-llama"): 3}
        # acme's least recently used answer went; globex keeps the category's quota
        first = [c.post(URL, json=ask(questions[0]), headers=bearer(key)).headers[
            "x-blendcache-cache"] for key in (ACME, GLOBEX)]
        assert first == ["miss", "semantic-hit"]


def test_all_tenant_views_need_the_admin_token(keyed):
    keyed.post(URL, json=ask(), headers=bearer(ACME))
    admin = keyed.get("/v1/blendcache/stats", headers=bearer(ADMIN)).json()
    assert set(admin) == {"requests", "chunk_cache", "semantic_cache", "tenants", "categories"}
    assert admin["categories"] == {"default": {"miss": 1}}
    assert list(admin["tenants"]) == ["acme"]
    own = keyed.get("/v1/blendcache/stats", headers=bearer(GLOBEX)).json()
    assert (own["tenant"], own["requests"], own["semantic_cache"]) == (
        "globex", 0, {"entries": {}})
    assert keyed.get("/v1/blendcache/stats", headers=bearer("nope")).json() == INVALID_KEY
    refused = {"error": {"message": "invalid or missing admin token: send "
                                    "'Authorization: Bearer <admin_token>'",
                         "type": "authentication_error", "param": None,
                         "code": "invalid_admin_token"}}
    for headers in ({}, bearer(ACME), bearer(ADMIN + "x")):
        response = keyed.get("/metrics", headers=headers)
        assert (response.status_code, response.json()) == (401, refused)
    assert keyed.get("/metrics", headers=bearer(ADMIN)).status_code == 200
    assert keyed.get("/health").status_code == 200  # liveness probes carry no token


def test_a_keyed_server_without_an_admin_token_has_no_admin(make_app, make_settings):
    with TestClient(make_app(make_settings(tenants=TENANTS))) as c:
        response = c.get("/metrics", headers=bearer(ACME))
        assert (response.status_code, response.json()["error"]["code"]) == (
            401, "admin_token_required")
        assert c.get("/v1/blendcache/stats", headers=bearer(ACME)).json()["tenant"] == "acme"


def test_an_open_server_with_an_admin_token(make_app, make_settings):
    with TestClient(make_app(make_settings(auth=AuthConfig(admin_token=ADMIN)))) as c:
        assert c.post(URL, json=ask()).status_code == 200  # no key needed
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=bearer(ADMIN)).status_code == 200
        assert c.get("/v1/blendcache/stats").json()["tenant"] == "default"
        assert list(c.get("/v1/blendcache/stats", headers=bearer(ADMIN)).json()["tenants"]) == [
            "default"]


def test_a_tenant_may_share_chunks_against_the_default(make_app, make_settings):
    docs = ["The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
            "Mount Fuji is the highest mountain in Japan."]
    tenants = (TenantConfig("acme", api_keys=(ACME,), share_chunks=True),
               TenantConfig("globex", api_keys=(GLOBEX,), share_chunks=True),
               TenantConfig("initech", api_keys=("sk-initech",)))
    body = ask("When was the Eiffel Tower completed?", documents=docs,
               blendcache={"cache": "off"})
    settings = make_settings(tenants=tenants, blend=BlendConfig(share_chunks_across_tenants=False))
    with TestClient(make_app(settings)) as c:
        c.post("/v1/blendcache/documents", json={"documents": docs}, headers=bearer(ACME))
        outcomes = [c.post(URL, json=body, headers=bearer(key)).headers["x-blendcache-cache"]
                    for key in (GLOBEX, "sk-initech")]
    assert outcomes == ["blend", "miss"]  # globex shares acme's pool; initech keeps its own


def test_tenants_from_the_environment_serve(make_app, tmp_path):
    settings = load_settings(environ={
        "BLENDCACHE_STORAGE_DATA_DIR": str(tmp_path),
        "BLENDCACHE_TENANTS_ACME_API_KEY_ENV": "ACME_KEY", "ACME_KEY": ACME})
    with TestClient(make_app(settings)) as c:
        assert c.post(URL, json=ask(), headers=bearer(ACME)).status_code == 200
        assert c.post(URL, json=ask(), headers=bearer(GLOBEX)).json() == INVALID_KEY
