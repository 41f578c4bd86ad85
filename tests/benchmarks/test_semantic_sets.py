"""The rule-made labelled sets: each transformation exact, the split deterministic and disjoint."""

import gzip
import json
import random

import pytest

from blendcache.benchmarks.semantic_sets import (
    _WRAPPERS as WRAPPERS,
)
from blendcache.benchmarks.semantic_sets import (
    Source,
    build_pairs,
    build_sets,
    change_number,
    describe,
    near_repeat,
    negate,
    neighbour,
    paraphrase,
    swap_entity,
    write_sets,
)


def test_negation_negates_the_first_auxiliary_else_adds_never():
    assert negate("when is the next deadpool movie released") == (
        "when isn't the next deadpool movie released")
    assert negate("who got the first nobel prize") == "who never got the first nobel prize"
    assert negate("the south west wind blows across nigeria between") is None


def test_number_change_moves_a_year_or_number_or_ordinal():
    rng = random.Random(0)
    moved = change_number("who won the cup in 1966", rng)
    assert moved != "who won the cup in 1966" and moved.startswith("who won the cup in 19")
    assert change_number("who got the first nobel prize", random.Random(0)).split()[3] in (
        "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
    assert change_number("who wrote hamlet", rng) is None


def test_entity_swap_replaces_a_name_or_the_prepositional_tail():
    assert swap_entity("Who directed Alien in America?", "Was Ridley Scott born here?",
                       cased=True) == "Who directed Alien in Ridley Scott?"
    assert swap_entity("who is the owner of reading football club", "where is the tower of london",
                       cased=False) == "who is the owner of london"


def test_paraphrase_rewrites_the_question_word_and_keeps_names():
    rng = random.Random(0)  # first draw >= 0.5: no wrapper
    assert rng.random() >= 0.5
    assert paraphrase("Who wrote Hamlet?", random.Random(0)) == "who is the author of Hamlet?"
    assert paraphrase("Where is Paris?", random.Random(1)) in {
        f"{w.format(q='whereabouts is Paris')}?" for w in WRAPPERS}


def test_neighbour_shares_content_words_and_no_answer():
    src = Source("s", "who sang the song hey jude", frozenset({"the beatles"}))
    pool = [Source("p1", "who sang the song hey jude live", frozenset({"the beatles"})),
            Source("p2", "who wrote the song hey jude", frozenset({"paul mccartney"})),
            Source("p3", "what is a song", frozenset({"music"}))]
    assert neighbour(src, pool) == "who wrote the song hey jude"


def _sources(n):
    return [Source(f"q{i}", f"who wrote the song number {i} in 19{50 + i}", frozenset({f"x{i}"}))
            for i in range(n)]


def test_split_is_deterministic_and_keeps_a_source_on_one_side():
    rows = build_pairs(_sources(40), name="t", positives=1, negatives=2)
    assert rows == build_pairs(_sources(40), name="t", positives=1, negatives=2)
    splits = {}
    for row in rows:
        assert splits.setdefault(row["source"], row["split"]) == row["split"]
    assert set(splits.values()) == {"train", "heldout"}
    # a source's side does not depend on the other sources
    alone = build_pairs(_sources(40)[7:8], name="t")
    assert alone[0]["split"] == splits["q7"]
    assert sum(r["same_answer"] for r in rows) == 40
    assert len(rows) == 120 and len({r["id"] for r in rows}) == 120


def test_build_sets_writes_disjoint_files(tmp_path):
    nq = tmp_path / "nq.jsonl.gz"
    with gzip.open(nq, "wt", encoding="utf-8") as fh:
        for i in range(1200):
            fh.write(json.dumps({"question": f"who wrote song {i} of album {i % 7}",
                                 "answers": [f"a{i}"]}) + "\n")
    hotpot = tmp_path / "hotpot.json"
    hotpot.write_text(json.dumps([{"id": f"h{i}", "question": f"Where was Alice {i} born?",
                                   "answers": ["Paris"]} for i in range(10)]))
    sets = build_sets(nq, hotpot)
    assert sets == build_sets(nq, hotpot)
    write_sets(sets, tmp_path / "out", inputs={})
    for name in ("nq_rule", "hotpot_rule"):
        train = [json.loads(x) for x in (tmp_path / "out" / name / "train.jsonl").open()]
        held = [json.loads(x) for x in (tmp_path / "out" / name / "heldout.jsonl").open()]
        assert {r["source"] for r in train}.isdisjoint(r["source"] for r in held)
        assert len(train) + len(held) == len(sets[name])
        readme = json.loads((tmp_path / "out" / name / "README.json").read_text())
        assert readme["counts"] == describe(sets[name])
    assert len({r["source"] for r in sets["nq_rule"]}) == 1000
    # a longer stream: more sources, the default's among them, each on its own side
    more = build_sets(nq, hotpot, nq_sources=1100)["nq_rule"]
    assert len({r["source"] for r in more}) == 1100
    default_train = {r["source"] for r in sets["nq_rule"] if r["split"] == "train"}
    default_held = {r["source"] for r in sets["nq_rule"] if r["split"] == "heldout"}
    more_held = {r["source"] for r in more if r["split"] == "heldout"}
    assert more_held.isdisjoint(default_train) and default_held < more_held
    with pytest.raises(ValueError, match="nq_sources"):
        build_sets(nq, hotpot, nq_sources=1200)


def test_near_repeat_makes_one_surface_slip():
    made = {near_repeat("Who wrote the song Hallelujah?", random.Random(s)) for s in range(30)}
    # no word of 6+ letters only (the mark sticks to "Hallelujah?"): no typo
    assert made == {"who wrote the song Hallelujah?", "Who wrote the song Hallelujah",
                    "Who wrote song Hallelujah?"}
    swaps = {near_repeat("whatever", random.Random(s)) for s in range(30)} - {
        "Whatever", "whatever?"}
    assert swaps and all(sorted(w) == sorted("whatever") and w != "whatever" for w in swaps)
