"""bench guarantee on a few pairs: the stream's order and halves, and one run through every
method that writes the result JSON, the table and the plot."""

import json

import pytest

from blendcache.benchmarks.bench_guarantee import (StreamPair, is_right, load_set_pairs,
                                                   load_stream_pairs, stream_events)

PAIRS = [
    {"id": "paraphrase-001", "category": "paraphrase", "a": "How do I reset my router?",
     "b": "How can I reset my router?", "same_answer": True},
    {"id": "negation-002", "category": "negation", "a": "Is the pool heated?",
     "b": "Is the pool not heated?", "same_answer": False},
    {"id": "paraphrase-003", "category": "paraphrase", "a": "When does the shop open?",
     "b": "What time does the shop open?", "same_answer": True},
    {"id": "scope-005", "category": "scope", "a": "How much is a return ticket?",
     "b": "How much is a return ticket for children?", "same_answer": False},
]


def conversation(n: int, domain: str, same: bool) -> dict:
    turn = [{"role": "user", "content": f"My {domain} order {n} has not arrived."},
            {"role": "assistant", "content": "Sorry to hear that. Shall I chase it?"}]
    return {"id": f"conv-{domain}-{n:03d}", "subtype": "x", "same_answer": same,
            "a": turn + [{"role": "user", "content": "yes please"}],
            "b": turn + [{"role": "user", "content": "yes, chase it" if same else "no, cancel"}]}


@pytest.fixture
def fow(tmp_path):
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    for part in ("conv-parts", "conv-long"):
        (tmp_path / part).mkdir()
        for domain in ("billing", "retail", "services"):
            rows = [conversation(n, domain, n % 3 != 0) for n in (1, 2, 3)]
            (tmp_path / part / f"{domain}.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


@pytest.fixture
def sets(tmp_path):
    """semantic_sets' layout: a train and a held-out half per set."""
    for name, prefix in (("nq_rule", "nq"), ("hotpot_rule", "hp")):
        (tmp_path / "sets" / name).mkdir(parents=True)
        for split in ("train", "heldout"):
            rows = [{"id": f"{prefix}-paraphrase-{i:04d}", "category": "paraphrase",
                     "a": f"who wrote {split} book {i}", "b": f"who is the author of {split} "
                     f"book {i}", "same_answer": True, "split": split} for i in range(3)]
            rows.append({"id": f"{prefix}-negation-0009", "category": "negation",
                         "a": f"is {split} lake salty", "b": f"isn't {split} lake salty",
                         "same_answer": False, "split": split})
            (tmp_path / "sets" / name / f"{split}.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "sets"


def test_the_rule_made_sets_join_by_their_held_out_halves_only(sets):
    pairs = load_set_pairs(sets)
    assert [p.category for p in pairs] == ["nq_rule"] * 4 + ["hotpot_rule"] * 4
    assert all("heldout" in p.a and "train" not in p.a + p.b for p in pairs)
    assert [p.same for p in pairs[:4]] == [True, True, True, False]


def test_halves_and_rendered_conversations(fow):
    odd = load_stream_pairs(fow, half="odd")
    assert {p.id for p in odd if p.category == "pairs"} == {"paraphrase-001", "paraphrase-003",
                                                            "scope-005"}
    billing = [p for p in odd if p.category == "billing"]
    assert len(billing) == 4  # ids 1 and 3 of conv-parts and of conv-long
    assert billing[0].a.splitlines()[-1] == "user: yes please"
    assert len(load_stream_pairs(fow, half="all")) == 4 + 18


def test_every_lookup_comes_after_its_store_and_the_seed_fixes_the_order(fow):
    pairs = load_stream_pairs(fow, half="all")
    events = stream_events(pairs, seed=3)
    seen = set()
    for kind, pair in events:
        if kind == "store":
            seen.add(pair.id)
        else:
            assert pair.id in seen
    assert events == stream_events(pairs, seed=3) != stream_events(pairs, seed=4)


def test_a_hit_is_right_on_its_own_same_answer_query_or_the_lookups_own_text():
    pair = StreamPair("p-1", "pairs", "Is the pool heated?", "is the POOL heated?", False)
    assert is_right(pair, "Is the  pool heated?")  # the lookup's own text
    assert not is_right(pair, "Is the sauna open?")
    same = StreamPair("p-2", "pairs", "How do I reset it?", "How can I reset it?", True)
    assert is_right(same, "How do I reset it?") and not is_right(same, "Reset what?")


def test_a_run_writes_its_json_table_and_plot(fow, sets, tmp_path, embedder, monkeypatch):
    from blendcache.benchmarks import bench_guarantee
    from blendcache.cli import main

    monkeypatch.setattr(bench_guarantee, "Embedder", lambda: embedder)
    stem = tmp_path / "out" / "guarantee_test"
    stem.parent.mkdir()
    assert main(["bench", "guarantee", "--data", str(fow), "--half", "all", "--seeds", "2",
                 "--bounds", "0.05", "--sets", str(sets), "--out", str(stem)]) == 0
    result = json.loads(stem.with_suffix(".json").read_text())
    assert (result["half"], result["seeds"], result["pairs"]) == ("all", 2, 22 + 8)
    assert result["design_half"] == "even" and "label" in result["note"]
    assert "held-out halves of nq_rule, hotpot_rule" in result["sets"]
    assert list(result["methods"]) == ["guarantee_0.05", "default", "cosine", "gptcache"]
    assert result["categories"] == ["pairs", "billing", "retail", "services", "nq_rule",
                                    "hotpot_rule"]
    assert result["lookups_per_category"]["nq_rule"] == 4
    row = result["methods"]["guarantee_0.05"]["per_category"]["pairs"]
    assert set(row) == {"error_rate_mean", "error_rate_max", "hit_rate_mean", "hits_mean",
                        "wrong_mean", "explorations_mean", "lookups", "seeds_within_bound",
                        "explored_above", "late_lookups", "late_hit_rate_mean",
                        "late_error_rate_mean", "late_error_rate_max", "hindsight_hit_rate_mean"}
    assert row["late_lookups"] == 2 and 0.0 <= row["hindsight_hit_rate_mean"] <= 1.0
    assert "hindsight_hit_rate_mean" not in result["methods"]["default"]["per_category"]["pairs"]
    # what the rule judged by: the explored candidates by score band, 2 seeds pooled
    every = result["methods"]["guarantee_0.05"]["per_category"]["all"]
    explored = every["explored_above"]
    assert explored["0.99"][1] <= explored["0.9"][1] <= explored["0.5"][1] \
        <= 2 * every["explorations_mean"]
    assert all(wrong <= n for wrong, n in explored.values())
    assert "explored_above" not in result["methods"]["default"]["per_category"]["all"]
    # 22 lookups: far too few evidence to serve under the bound; every candidate explored
    assert row["hit_rate_mean"] == 0.0 and row["seeds_within_bound"] == 2
    assert result["methods"]["default"]["per_category"]["all"]["seeds_within_bound"] is None
    curves = result["methods"]["cosine"]["curves_mean"]
    assert len(curves["all"]["error_rate"]) == len(curves["all"]["hit_rate"]) == 30
    assert len(curves["nq_rule"]["hit_rate"]) == len(curves["pairs"]["hit_rate"]) == 4
    assert result["run"]["options"]["half"] == "all"
    text = stem.with_suffix(".txt").read_text()
    assert "design on the even half only" in text and "what the rule judged by" in text
    assert "late hit" in text and "hindsight" in text
    assert stem.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_weights_replace_the_bounded_categories_score_model_only(tmp_path, embedder):
    import argparse
    from dataclasses import replace

    from blendcache.benchmarks.bench_guarantee import _system, add_arguments
    from blendcache.index.decision import DEFAULT_GUARANTEE_WEIGHTS, load_model

    served = load_model()
    other = replace(served, intercept=served.intercept - 3.0)
    weights = tmp_path / "cache_weights.json"
    weights.write_text(other.to_json())
    models = {}
    for method, given in (("guarantee_0.05", weights), ("guarantee_0.1", None),
                          ("default", weights)):
        (tmp_path / method).mkdir()
        system = _system(method, ["pairs"], embedder, seed=0, feedback_rate=0.1,
                         tmp=str(tmp_path / method), size=4, guarantee={},
                         weights=None if given is None else str(given))
        decision = system.cache.guarantee_decision
        models[method] = (system.cache.verifier.model, decision and decision.model)
        system.close()
    cache_model = load_model(None, default=DEFAULT_GUARANTEE_WEIGHTS)
    assert models["guarantee_0.05"] == (served, other)  # the hit decision stays the served one
    assert models["guarantee_0.1"] == (served, cache_model)  # by default the cache-protocol one
    assert models["default"] == (served, None)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--data", "d", "--weights", str(weights)])
    assert args.weights == str(weights)


def test_the_hindsight_hit_rate_is_the_best_threshold_within_the_bound():
    from blendcache.benchmarks.bench_guarantee import hindsight_hit_rate

    # by score: 0.9 right, 0.8 right, 0.7 wrong, 0.6 right, 0.6 right, 0.5 wrong
    cands = [(0.6, True), (0.9, True), (0.5, False), (0.7, False), (0.8, True), (0.6, True)]
    # >= 0.8: 0 of 2 wrong; >= 0.7: 1/3; >= 0.6: 1/5 (ties served together); >= 0.5: 2/6
    assert hindsight_hit_rate(cands, 10, 0.0) == 0.2
    assert hindsight_hit_rate(cands, 10, 0.2) == 0.5
    assert hindsight_hit_rate(cands, 10, 0.25) == 0.5
    assert hindsight_hit_rate(cands, 10, 1 / 3) == 0.6
    assert hindsight_hit_rate([(0.9, False)], 10, 0.1) == 0.0
    assert hindsight_hit_rate([], 10, 0.1) == 0.0


def test_the_later_half_is_counted_per_category():
    from blendcache.benchmarks.bench_guarantee import summarise

    records = [("a", "explore", None), ("b", "miss", None), ("a", "explore", None),
               ("a", "hit", True), ("b", "hit", False), ("a", "hit", False)]
    per = summarise(records, ["a", "b"])
    assert (per["a"]["late_lookups"], per["a"]["late_hit_rate"], per["a"]["late_error_rate"]) \
        == (2, 1.0, 0.5)
    assert (per["b"]["late_lookups"], per["b"]["late_hit_rate"]) == (1, 1.0)
    assert (per["all"]["late_lookups"], per["all"]["late_error_rate"]) == (3, 2 / 3)
