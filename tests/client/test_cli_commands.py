"""``blendcache stats`` against a real server (the figures of the stats API and of the admin
page), and ``blendcache warm``'s progress bar and resume after an interruption, run in process
on the tiny model."""

import json
import re
from pathlib import Path

import httpx

from blendcache import Client
from blendcache.cli import _warm, build_parser, main
from blendcache.config import AuthConfig, TenantConfig
from blendcache.middleware.admin.data import OUTCOMES, percent

Q = "What is the capital of France?"
DOCS = ["The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        "Mount Fuji is the highest mountain in Japan.",
        "The Nile flows north into the Mediterranean Sea.",
        "Honey never spoils when it is sealed.",
        "The Great Wall of China is thousands of kilometres long."]


def rows(out: str, title: str) -> list[list[str]]:
    """The rows of the table under ``title`` (header first), cells split on runs of spaces."""
    block = out.split(title + "\n", 1)[1].split("\n\n", 1)[0]
    return [re.split(r"\s{2,}", line.strip()) for line in block.splitlines()
            if not line.startswith(("verifier", "stored:"))]


def test_stats_prints_the_stats_apis_figures(serve, sdk_settings, capsys):
    settings = sdk_settings(tenants=(TenantConfig("acme", api_keys=("sk-acme",)),),
                            auth=AuthConfig(admin_token="sk-admin"))
    url = serve(settings)
    with Client(url, api_key="sk-acme") as bc:
        bc.chat(Q, max_tokens=6)
        bc.chat(Q, max_tokens=6)
        bc.chat("Where is Mount Fuji?", documents=DOCS[1:3], cache="off", max_tokens=4)
        bc.chat("Where is Mount Fuji?", documents=DOCS[1:3], cache="off", max_tokens=4)
    with Client(url, api_key="sk-admin") as admin:
        expected = admin.stats()

    assert main(["stats", "--url", url, "--api-key", "sk-admin"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{url}: GET /v1/blendcache/stats\n")
    tenants = [r for r in rows(out, "requests by tenant")]
    assert tenants[0][:6] == ["tenant", "requests", "semantic-hit", "blend", "miss", "hit rate"]
    acme = expected.tenants["acme"]
    assert tenants[1] == ["acme", "4", "1", "1", "2", "25.0%", "25.0%", str(acme.tokens_reused),
                          str(acme.tokens_recomputed)]
    categories = [r for r in rows(out, "requests by category, every tenant ('none': not "
                                              "classified, the semantic cache skipped)")]
    assert categories[1:] == [["default", "2", "1", "0", "1", "50.0%"],
                              ["none", "2", "0", "1", "1", "0.0%"]]
    assert expected.category_hit_rate("default") == 0.5
    page = httpx.get(f"{url}/admin/data", headers={"authorization": "Bearer sk-admin"}).json()
    assert [[name, str(c["requests"]), *(str(c["outcomes"].get(o, 0)) for o in OUTCOMES),
             percent(c["hit_rate"])] for name, c in page["categories"].items()] == categories[1:]
    entries = [r for r in rows(out, "semantic cache entries")]
    assert entries[1:] == [["acme", "default/tiny-llama", "1"]]
    semantic = [r for r in rows(out, "semantic cache")]
    assert semantic[1] == ["2", "1", "1", "50.0%", "0"]
    tiers = {r[0]: r for r in rows(out, "chunk cache tiers")[1:]}
    memory = expected.chunk_cache["tiers"]["memory"]
    assert tiers["memory"][1:3] == [str(memory["hits"]), str(memory["misses"])]
    assert set(tiers) == {"memory", "disk"}

    # A tenant's key: its own rows, no cache-wide tables.
    assert main(["stats", "--url", url, "--api-key", "sk-acme"]) == 0
    own = capsys.readouterr().out
    assert [r for r in rows(own, "requests by tenant")][1][:2] == ["acme", "4"]
    assert "chunk cache tiers" not in own and "requests by category" not in own
    assert main(["stats", "--url", url, "--api-key", "sk-wrong"]) == 2
    assert capsys.readouterr().err == "blendcache: error: invalid API key\n"


def test_warm_shows_progress_and_resumes_after_an_interruption(tmp_path, capsys, tiny_engine):
    model = Path(tiny_engine.model.config._name_or_path)
    documents = tmp_path / "docs.jsonl"
    documents.write_text("\n".join(json.dumps(d) for d in DOCS))
    argv = ["warm", "--documents", str(documents), "--model", str(model), "--batch", "2",
            "--data-dir", str(tmp_path / "data"), "--threads", "1", "--system", "Be brief."]
    batches = []

    def interrupt_after_the_first_batch(batch):
        batches.append(batch)
        raise KeyboardInterrupt  # as Ctrl-C while the second batch starts

    assert _warm(build_parser().parse_args(argv), on_batch=interrupt_after_the_first_batch) == 130
    err = capsys.readouterr().err
    assert [(b.documents, b.stored) for b in batches] == [(2, 2)] and batches[0].tokens > 0
    assert "2/5" in err and "chunk/s" in err and "2 prefilled" in err and "tok/s" in err
    assert err.endswith("interrupted after 2 of 5 documents: run the same command again to "
                        "resume (stored chunks are found and skipped)\n")

    # Rerun: the two stored chunks are found (disk tier and database), only three prefilled.
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "5 documents: 3 chunks stored, 2 already stored" in captured.out
    assert "5/5" in captured.err and "3 prefilled" in captured.err
