"""[tenants.NAME] and [auth] from TOML and the environment, and the deprecated [server] api_keys:
every mistake is a ConfigError at load that names it, never a failure per request."""

import logging

import pytest

from blendcache.config import AuthConfig, Settings, TenantConfig, load_settings
from blendcache.errors import ConfigError


def toml(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_server_api_keys_from_the_environment_is_refused_at_load():
    # The environment gives a string, never a table: before, every request then failed (500).
    with pytest.raises(ConfigError, match=r"server\.api_keys must be a table .*"
                                          r"BLENDCACHE_TENANTS_<NAME>_API_KEY"):
        load_settings(environ={"BLENDCACHE_SERVER_API_KEYS": "sk-a=acme"})


def test_tenants_from_the_environment():
    settings = load_settings(environ={
        "BLENDCACHE_TENANTS_ACME_API_KEY": "sk-acme",
        "BLENDCACHE_TENANTS_GLOBEX_API_KEY_ENV": "GLOBEX_KEY", "GLOBEX_KEY": "sk-globex",
        "BLENDCACHE_TENANTS_GLOBEX_MAX_ENTRIES": "7",
        "BLENDCACHE_TENANTS_GLOBEX_SHARE_CHUNKS": "true",
        "BLENDCACHE_AUTH_ADMIN_TOKEN": "root-token",
    })
    assert settings.tenants == (
        TenantConfig("acme", api_keys=("sk-acme",)),
        TenantConfig("globex", api_keys=("sk-globex",), max_entries=7, share_chunks=True),
    )
    assert settings.auth == AuthConfig(admin_token="root-token")


def test_tenants_from_toml_with_keys_from_the_environment(tmp_path):
    path = toml(tmp_path, '[tenants.team-a]\napi_key_env = "TEAM_A_KEY"\nmax_entries = 5\n'
                          '[tenants.team-b]\napi_key = "sk-b"\nshare_chunks = false\n'
                          '[auth]\nadmin_token_env = "ADMIN"\n')
    env = {"TEAM_A_KEY": "sk-a", "ADMIN": "root-token",
           # the environment adds to a TOML tenant, its name upper-cased with '-' as '_'
           "BLENDCACHE_TENANTS_TEAM_B_MAX_ENTRIES": "9"}
    settings = load_settings(path, environ=env)
    assert settings.tenants == (
        TenantConfig("team-a", api_keys=("sk-a",), max_entries=5),
        TenantConfig("team-b", api_keys=("sk-b",), max_entries=9, share_chunks=False),
    )
    assert settings.auth.admin_token == "root-token"


def test_an_environment_key_replaces_the_toml_one(tmp_path):
    path = toml(tmp_path, '[tenants.acme]\napi_key_env = "UNSET_VARIABLE"\n')
    settings = load_settings(path, environ={"BLENDCACHE_TENANTS_ACME_API_KEY": "sk-env"})
    assert settings.tenants == (TenantConfig("acme", api_keys=("sk-env",)),)


def test_the_deprecated_api_keys_still_name_tenants(tmp_path, caplog):
    path = toml(tmp_path, '[server]\napi_keys = { "k1" = "acme", "k2" = "acme", "k3" = "b" }\n'
                          '[tenants.acme]\napi_key = "k0"\nmax_entries = 3\n')
    with caplog.at_level(logging.WARNING, logger="blendcache.config"):
        settings = load_settings(path, environ={})
    assert settings.all_tenants() == (
        TenantConfig("acme", api_keys=("k0", "k1", "k2"), max_entries=3),
        TenantConfig("b", api_keys=("k3",)),
    )
    assert "[server] api_keys is deprecated" in caplog.text
    assert "k1" not in caplog.text and "k3" not in caplog.text


@pytest.mark.parametrize("text,environ,match", [
    ('[tenants.acme]\nmax_entries = 3\n', {}, r"\[tenants.acme\] needs api_key or api_key_env"),
    ('[tenants.acme]\napi_key_env = "NOPE"\n', {},
     r"\[tenants.acme\] api_key_env names NOPE, which is not set"),
    ('[tenants.acme]\napi_key_env = "EMPTY"\n', {"EMPTY": ""}, "EMPTY, which is not set"),
    ('[tenants.acme]\napi_key = "k"\napi_key_env = "K"\n', {"K": "k"},
     r"\[tenants.acme\] sets both api_key and api_key_env"),
    ('[tenants.acme]\napi_key = ""\n', {}, r"tenant 'acme': an API key is empty"),
    ('[tenants.acme]\napi_key = "k"\nmax_entries = 0\n', {}, "max_entries must be >= 1"),
    ('[tenants.acme]\napi_key = "k"\nmax_entries = "5"\n', {}, "max_entries must be >= 1"),
    ('[tenants.acme]\napi_key = "k"\nshare_chunks = "yes"\n', {}, "share_chunks must be"),
    ('[tenants.acme]\napi_key = "k"\nquota = 3\n', {}, r"\[tenants.acme\] unknown keys: quota"),
    ('[tenants.a]\napi_key = "same"\n[tenants.b]\napi_key = "same"\n', {},
     "tenants 'a' and 'b' share an API key"),
    ('[tenants]\nacme = "k"\n', {}, r"\[tenants.acme\] must be a table"),
    ('[server]\napi_keys = { "k" = "" }\n', {}, "server.api_keys: a tenant name is empty"),
    ('[server]\napi_keys = { "k" = 3 }\n', {}, "server.api_keys must be a table of key"),
    ('[server]\napi_keys = { "k" = "a" }\n[tenants.b]\napi_key = "k"\n', {},
     "tenants 'b' and 'a' share an API key"),
    ('[tenants.a]\napi_key = "k"\n[auth]\nadmin_token = "k"\n', {},
     "auth.admin_token must differ from every API key"),
    ('[auth]\nadmin_token = ""\n', {}, "auth.admin_token must be a non-empty string"),
    ('[auth]\nadmin_token_env = "NOPE"\n', {}, r"\[auth\] admin_token_env names NOPE"),
])
def test_bad_tenant_config_is_a_config_error(tmp_path, text, environ, match):
    with pytest.raises(ConfigError, match=match):
        load_settings(toml(tmp_path, text), environ=environ)


def test_config_errors_never_name_a_key(tmp_path):
    path = toml(tmp_path, '[tenants.a]\napi_key = "sk-dup"\n[tenants.b]\napi_key = "sk-dup"\n'
                          '[auth]\nadmin_token = "sk-dup"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert "sk-dup" not in str(info.value)


def test_bad_tenant_environment_is_a_config_error():
    with pytest.raises(ConfigError, match="BLENDCACHE_TENANTS_ACME_MAX_ENTRIES: not an int"):
        load_settings(environ={"BLENDCACHE_TENANTS_ACME_API_KEY": "k",
                               "BLENDCACHE_TENANTS_ACME_MAX_ENTRIES": "many"})
    with pytest.raises(ConfigError, match="BLENDCACHE_TENANTS_API_KEY: no tenant name"):
        load_settings(environ={"BLENDCACHE_TENANTS_API_KEY": "k"})


def test_secrets_stay_out_of_reprs():
    settings = Settings(tenants=(TenantConfig("acme", api_keys=("sk-secret",)),),
                        auth=AuthConfig(admin_token="root-secret"))
    assert "secret" not in repr(settings)


def test_a_tenant_override_of_chunk_sharing():
    from blendcache.config import BlendConfig

    tenants = (TenantConfig("shares", api_keys=("k1",), share_chunks=True),
               TenantConfig("keeps", api_keys=("k2",), share_chunks=False),
               TenantConfig("follows", api_keys=("k3",)))
    for shared in (False, True):
        settings = Settings(tenants=tenants,
                            blend=BlendConfig(share_chunks_across_tenants=shared))
        assert [settings.chunk_namespace(t.name) for t in tenants] == [
            "", "keeps", "" if shared else "follows"]
