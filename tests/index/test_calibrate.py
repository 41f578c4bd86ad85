import json

import numpy as np
import pytest

from blendcache.config import load_settings
from blendcache.errors import ConfigError
from blendcache.index.calibrate import (
    FALLBACK_THRESHOLD,
    calibrate,
    load_pairs,
    pick_threshold,
    serving_groups,
    write_thresholds,
)

from .conftest import make_category


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_load_pairs_normalises_both_formats(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"a": "x", "b": "y", "same_answer": True, "category": "faq"},
        {"text_a": "u", "text_b": "v", "label": 0},
        {"text_a": "s", "text_b": "t", "label": "1"},
    ])
    pairs = load_pairs(path)
    assert [(p.a, p.b, p.same, p.category) for p in pairs] == [
        ("x", "y", True, "faq"), ("u", "v", False, None), ("s", "t", True, None),
    ]


def test_pick_threshold_lowest_meeting_target_with_support():
    sims = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.7])
    same = np.array([True, True, True, False, True, False])
    accepted = np.ones(6, bool)
    grid = np.array([0.7, 0.75, 0.8, 0.85, 0.9])

    def pick(target, support):
        return pick_threshold(
            sims, accepted, same, target_precision=target, min_support=support, grid=grid
        )

    assert pick(0.8, 2) == 0.75
    assert pick(1.0, 2) == 0.85
    assert pick(1.0, 4) is None
    accepted[3] = False  # the verifier rejects the negative at 0.8: not a hit any more
    assert pick(1.0, 2) == 0.75
    accepted[5] = False
    assert pick(1.0, 2) == 0.7


def test_serving_groups_pool_pair_kinds(tmp_path):
    kinds = load_pairs(write_jsonl(tmp_path / "k.jsonl", [
        {"a": "1", "b": "2", "same_answer": True, "category": "paraphrase"},
        {"a": "3", "b": "4", "same_answer": False, "category": "negation"},
    ]))
    assert serving_groups(kinds) == {"default": [0, 1]}
    served = load_pairs(write_jsonl(tmp_path / "s.jsonl", [
        {"a": "1", "b": "2", "same_answer": True, "category": "faq"},
        {"a": "3", "b": "4", "same_answer": False, "category": "faq"},
        {"a": "5", "b": "6", "same_answer": True, "category": "chat"},
        {"a": "7", "b": "8", "same_answer": False, "category": "chat"},
    ]))
    assert serving_groups(served) == {"faq": [0, 1], "chat": [2, 3]}


def test_calibrate_on_small_labelled_set(tmp_path, embedder):
    rows = [
        {"a": "How do I reset my router?", "b": "How can I reset my router?", "same_answer": True},
        {"a": "Where is the train station?", "b": "Where's the train station?",
         "same_answer": True},
        {"a": "When does the bakery open?", "b": "What time does the bakery open?",
         "same_answer": True},
        {"a": "Is the pool open today?", "b": "Is the pool closed today?", "same_answer": False},
        {"a": "Is the pool open today?", "b": "Is the pool open on Friday?", "same_answer": False},
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    verified = calibrate(path, target_precision=1.0, embedder=embedder, min_support=3)
    plain = calibrate(
        path, target_precision=1.0, embedder=embedder, verify=False, min_support=3
    )
    assert set(verified) == {"default"}
    # with the verifier the negatives never hit, so a low threshold already gives precision 1
    assert verified["default"] < plain["default"]
    assert calibrate(path, target_precision=1.0, embedder=embedder, min_support=50) == {
        "default": FALLBACK_THRESHOLD
    }


def test_write_thresholds_round_trips_through_the_settings_loader(tmp_path):
    path = tmp_path / "blendcache.toml"
    base = [make_category("medical", ttl_s=3600.0, max_entries=50, eviction="lfu",
                          context_sensitive=True, examples=('Is "ibuprofen" safe?',))]
    write_thresholds(path, {"default": 0.72, "medical": 0.91}, base=base)
    settings = load_settings(path, environ={})
    cats = {c.name: c for c in settings.semantic.categories}
    assert cats["default"].threshold == 0.72
    assert (cats["medical"].threshold, cats["medical"].ttl_s, cats["medical"].max_entries,
            cats["medical"].eviction, cats["medical"].context_sensitive,
            cats["medical"].examples) == (0.91, 3600.0, 50, "lfu", True, ('Is "ibuprofen" safe?',))


def test_write_thresholds_merges_into_an_existing_config(tmp_path):
    path = tmp_path / "blendcache.toml"
    path.write_text(
        "# ours: keep this comment\n"
        "[server]\nport = 9001\n\n"
        "[[semantic.categories]]\nname = \"default\"\nthreshold = 0.62\nttl_s = 60.0\n\n"
        "[[semantic.categories]]\nname = \"faq\"\nthreshold = 0.8\nmax_entries = 7\n"
        "examples = [\"Where is my invoice?\"]\n")
    write_thresholds(path, {"faq": 0.93, "medical": 0.91},
                     base=[make_category("medical", ttl_s=3600.0, max_entries=50)])
    text = path.read_text()
    assert "# ours: keep this comment" in text
    settings = load_settings(path, environ={})
    assert settings.server.port == 9001
    cats = {c.name: c for c in settings.semantic.categories}
    assert list(cats) == ["default", "faq", "medical"]
    assert (cats["default"].threshold, cats["default"].ttl_s) == (0.62, 60.0)  # untouched
    assert (cats["faq"].threshold, cats["faq"].max_entries, cats["faq"].examples) == (
        0.93, 7, ("Where is my invoice?",))
    assert (cats["medical"].threshold, cats["medical"].ttl_s, cats["medical"].max_entries) == (
        0.91, 3600.0, 50)


def test_write_thresholds_refuses_a_file_that_is_not_toml(tmp_path):
    path = tmp_path / "blendcache.toml"
    path.write_text("[semantic\nthis is not toml")
    with pytest.raises(ConfigError, match="not valid TOML, nothing written"):
        write_thresholds(path, {"default": 0.7})
    assert path.read_text() == "[semantic\nthis is not toml"


def test_each_category_can_have_its_own_target_precision(tmp_path, embedder):
    """Pairs that carry serving categories (both labels in each): a stricter target for one
    category raises its threshold alone; '*' is every other category's target."""
    rows = []
    for cat in ("faq", "chat"):
        rows += [
            {"a": "How do I reset my router?", "b": "How can I reset my router?",
             "same_answer": True, "category": cat},
            {"a": "Where is the train station?", "b": "Where's the train station?",
             "same_answer": True, "category": cat},
            {"a": "Is the pool open today?", "b": "Is the pool open on Friday?",
             "same_answer": False, "category": cat},
        ]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    loose = calibrate(path, target_precision=0.6, embedder=embedder, verify=False,
                      min_support=2)
    mixed = calibrate(path, target_precision={"*": 0.6, "faq": 1.0}, embedder=embedder,
                      verify=False, min_support=2)
    assert set(loose) == {"faq", "chat"}
    assert mixed["chat"] == loose["chat"]
    assert mixed["faq"] > loose["faq"]
