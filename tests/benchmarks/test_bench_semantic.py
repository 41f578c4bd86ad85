"""bench semantic's protocols: a hit on the lookup's own text is true by default (identical),
only the pair's own same-answer query is under ``literal``."""

import pytest

from blendcache.benchmarks.bench_semantic import _metrics, normalize, pick_half
from blendcache.index.calibrate import LabelledPair

PAIRS = [
    LabelledPair("How do I reset my router?", "How can I reset my router?", True),
    LabelledPair("Is the pool heated?", "Is the pool not heated?", False),
    # this lookup is, up to case and spaces, another pair's cached query
    LabelledPair("Is the sauna open?", "is the POOL  heated?", False),
]
HITS = ["How do I reset my router?", "Is the pool heated?", "Is the pool heated?"]
CACHED = frozenset(normalize(p.a) for p in PAIRS)


def test_normalize_folds_case_width_and_spaces():
    assert normalize("  Ｉs the\tPOOL\n heated? ") == "is the pool heated?"


@pytest.mark.parametrize("protocol, expected", [
    ("identical", {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "false_hit_rate": 0.3333}),
    ("literal", {"precision": 0.3333, "recall": 1.0, "f1": 0.5, "false_hit_rate": 0.6667}),
])
def test_identical_text_hits_are_true_only_under_the_default_protocol(protocol, expected):
    assert _metrics(PAIRS, HITS, protocol, CACHED) == expected


def test_a_missed_identical_lookup_costs_recall_under_the_default_protocol():
    missed = HITS[:2] + [None]
    assert _metrics(PAIRS, missed, "identical", CACHED)["recall"] == 0.5
    assert _metrics(PAIRS, missed, "literal", CACHED)["recall"] == 1.0


def test_halves_split_by_the_ids_number():
    pairs = [LabelledPair("a", "b", True, id=f"negation-{n:03d}") for n in (1, 2, 3, 10)]
    assert [p.id for p in pick_half(pairs, "even")] == ["negation-002", "negation-010"]
    assert [p.id for p in pick_half(pairs, "odd")] == ["negation-001", "negation-003"]
    assert pick_half(pairs, "all") == pairs
    with pytest.raises(ValueError, match="ending in a number"):
        pick_half([LabelledPair("a", "b", True, id="x")], "odd")
