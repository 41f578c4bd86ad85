"""The README's configuration example is a valid config: copy-paste must work."""

import re
from pathlib import Path

from blendcache.config import load_settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_toml_example_loads(tmp_path):
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no TOML example"
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.toml"
        path.write_text(block)
        settings = load_settings(path, environ={"TEAM_A_KEY": "sk-a", "BLENDCACHE_ADMIN": "adm"})
        assert settings.semantic.default_category in {c.name for c in settings.semantic.categories}
