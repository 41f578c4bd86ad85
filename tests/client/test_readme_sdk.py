"""The README's SDK and LangChain examples ("Use it from your app", "Use it from LangChain")
run as printed, against a real server on the tiny model, and print what their comments promise."""

import re
from pathlib import Path

import pytest

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


def test_the_readme_langchain_example_runs(serve, sdk_settings, capsys):
    pytest.importorskip("langchain_core")
    from blendcache.config import CategoryConfig, SemanticConfig
    from langchain_core.documents import Document
    from langchain_core.globals import set_llm_cache
    from langchain_core.runnables import RunnableLambda

    section = README.read_text().split("### Use it from LangChain", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section.split("\n### ", 1)[0], flags=re.S)
    faq = SemanticConfig(categories=(CategoryConfig("default"), CategoryConfig("faq")))
    url = serve(sdk_settings(semantic=faq))  # the README's settings example has a "faq" category
    docs = [Document(page_content="The Eiffel Tower was completed in 1889 in Paris."),
            Document(page_content="Mount Fuji is the highest mountain in Japan.")]
    scope = {"retriever": RunnableLambda(lambda _question: docs)}
    try:
        exec(compile(code.replace("http://127.0.0.1:8000", url), "README.md", "exec"), scope)
    finally:
        set_llm_cache(None)
    out = capsys.readouterr().out
    assert re.search(r" (miss|blend)$", out.strip())
    assert scope["answer"].response_metadata["blendcache"]["chunks_total"] == 2
