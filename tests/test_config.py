import pytest

from blendcache.config import Settings, load_settings, settings_from_mapping
from blendcache.errors import ConfigError


def test_defaults():
    s = load_settings(environ={})
    assert s == Settings()


def test_toml_env_and_overrides_in_order(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[blend]\nrecompute_ratio = 0.2\n')
    s = load_settings(cfg, environ={"BLENDCACHE_SERVER_PORT": "9100"},
                      overrides={"server": {"host": "127.0.0.2", "port": None}})
    assert s.server.port == 9100
    assert s.server.host == "127.0.0.2"
    assert s.blend.recompute_ratio == 0.2


def test_categories_from_toml(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[semantic.categories]]\nname = "default"\n'
                   '[[semantic.categories]]\nname = "faq"\nthreshold = 0.85\nttl_s = 60\n')
    s = load_settings(cfg, environ={})
    assert s.semantic.category("faq").threshold == 0.85
    assert s.semantic.category("faq").ttl_s == 60


@pytest.mark.parametrize("data,match", [
    ({"nope": {}}, "unknown config sections"),
    ({"server": {"prot": 1}}, "unknown keys: prot"),
    ({"blend": {"recompute_ratio": 1.5}}, "recompute_ratio"),
    ({"blend": {"max_missing_share": -0.5}}, "max_missing_share"),
    ({"blend": {"check_layers": [2, 8, 2]}}, "repeats a layer"),
    ({"semantic": {"max_temperature": -0.1}}, "max_temperature"),
    ({"blend": {"background": "/no/such/background.txt"}}, "blend.background"),
    ({"server": {"max_documents": 0}}, "server.max_documents must be >= 1"),
    ({"server": {"max_document_chars": -1}}, "server.max_document_chars must be >= 1"),
    ({"storage": {"request_retention_days": -1}}, "storage.request_retention_days"),
])
def test_bad_config_is_a_config_error(data, match):
    with pytest.raises(ConfigError, match=match):
        settings_from_mapping(data)


def test_unreadable_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(bad, environ={})
