"""The ``blendcache`` command line, run in process."""

import json

import pytest

from blendcache.cli import build_parser, main
from blendcache.config import load_settings

PAIRS = [
    {"a": "How do I reset my password?", "b": "How can I reset my password?",
     "same_answer": True, "category": "paraphrase"},
    {"a": "What time does the library open?", "b": "When does the library open?",
     "same_answer": True, "category": "paraphrase"},
    {"a": "Is parking free on weekends?", "b": "Is parking not free on weekends?",
     "same_answer": False, "category": "negation"},
    {"a": "How many days are in March?", "b": "How many days are in April?",
     "same_answer": False, "category": "entity_swap"},
]


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "bench", "calibrate", "warm", "stats"):
        assert command in out


def test_bad_config_file_is_a_clean_error(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[nope]\n")
    assert main(["calibrate", "--config", str(bad), "--pairs", "x", "--target-precision",
                 "0.9"]) == 2
    assert "unknown config sections" in capsys.readouterr().err


def test_calibrate_writes_a_loadable_config(tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(p) for p in PAIRS))
    out = tmp_path / "cal.toml"
    assert main(["calibrate", "--pairs", str(pairs), "--target-precision", "0.9",
                 "--write", str(out)]) == 0
    settings = load_settings(out, environ={})
    (category,) = settings.semantic.categories
    assert category.name == "default"
    assert f"{category.threshold:.4f}" in capsys.readouterr().out


def test_bench_semantic_writes_its_json(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(p) for p in PAIRS))
    out = tmp_path / "sem.json"
    assert main(["bench", "semantic", "--pairs", str(pairs), "--scale-n", "200",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"pairs", "protocol", "half", "systems", "per_category", "lookup_ms",
                           "index_size", "recall_at_1", "embed_ms_by_threads", "busy_neighbour",
                           "lone_frontier", "run"}
    assert set(result["embed_ms_by_threads"]) == {"1", "2"} and not result["busy_neighbour"]
    assert set(result["lone_frontier"]) == set(result["systems"])
    assert set(result["recall_at_1"]) == {"lookups", "perturbed"}
    assert (result["protocol"], result["half"]) == ("identical", "all")
    run = result["run"]
    assert (run["model"], run["dtype"], run["options"]["scale_n"]) == (
        "all-MiniLM-L6-v2", "float32", 200)
    assert run["device"] and run["git"]
    assert set(result["systems"]) == {"blendcache", "uniform_threshold", "gptcache"}
    assert result["pairs"] == 4 and result["index_size"] == 200
    for system in result["systems"].values():
        assert 0.0 <= system["false_hit_rate"] <= 1.0


@pytest.mark.model
def test_warm_stores_documents_once_across_runs(tmp_path, capsys, model_data_dir):
    model = next((model_data_dir / "models").iterdir())  # the converted copy: loads in seconds
    docs = tmp_path / "docs.jsonl"
    docs.write_text('"Mount Fuji is the highest mountain in Japan."\n'
                    '{"id": "t", "text": "The Eiffel Tower is in Paris."}\n')
    argv = ["warm", "--documents", str(docs), "--system", "Be brief.", "--model", str(model),
            "--data-dir", str(tmp_path / "data")]
    assert main(argv) == 0
    assert "2 documents: 2 chunks stored, 0 already stored" in capsys.readouterr().out
    assert main(argv) == 0  # a new process's view: the disk tier and the database
    assert "0 chunks stored, 2 already stored" in capsys.readouterr().out


@pytest.mark.parametrize("content,match", [
    ('["a", 3]', "document 1"),
    ('{"id": "x"}\n', "document 0"),
    ("[not json", "cannot read documents"),
])
def test_warm_refuses_bad_documents_files(tmp_path, capsys, content, match):
    docs = tmp_path / "docs.json"
    docs.write_text(content)
    assert main(["warm", "--documents", str(docs)]) == 2
    assert match in capsys.readouterr().err


def test_calibrate_takes_per_category_targets_and_refuses_malformed_ones(tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(p) for p in PAIRS))
    assert main(["calibrate", "--pairs", str(pairs), "--target-precision", "0.9",
                 "--category-target", "faq=0.99"]) == 0
    assert main(["calibrate", "--pairs", str(pairs), "--target-precision", "0.9",
                 "--category-target", "faq"]) == 2
    assert "expected NAME=P" in capsys.readouterr().err
    assert main(["calibrate", "--pairs", str(pairs), "--target-precision", "0.9",
                 "--category-target", "faq=1.5"]) == 2
    assert "target precision of 'faq' must be in (0, 1]" in capsys.readouterr().err
