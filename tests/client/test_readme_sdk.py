"""The README's SDK example ("Use it from your app") runs as printed, against a real server on
the tiny model, and prints the outcomes its comments promise."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_sdk_example_runs(serve, capsys):
    section = README.read_text().split("### Use it from your app", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section.split("\n### ", 1)[0], flags=re.S)
    url = serve()
    exec(compile(code.replace("http://127.0.0.1:8000", url), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"^blend 2 2 \d+\.\d+$", out, flags=re.M)
    assert re.search(r"^semantic-hit 1\.0$", out, flags=re.M)
    assert "{'default': TenantStats(name='default', requests=3, outcomes={" in out
