"""bench semantic's protocols: a hit on the lookup's own text is true by default (identical),
only the pair's own same-answer query is under ``literal``."""

import numpy as np
import pytest

from blendcache.benchmarks.bench_semantic import _metrics, lone_frontier, normalize, pick_half
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


def test_lone_frontier_sweeps_one_threshold_under_the_same_protocol():
    pairs = [LabelledPair("q1", "l1", True), LabelledPair("q2", "l2", False),
             LabelledPair("q1", "l3", True)]
    cached = ["q1", "q2"]
    vec_cached = np.eye(2, dtype=np.float32)
    # best similarities: l1 0.9 (q1, true), l2 0.8 (q2, false), l3 0.7 (q1, true)
    vec_lookups = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.0]], dtype=np.float32)
    texts = frozenset(cached)
    grid = np.array([0.65, 0.75, 0.85, 0.95])
    # 0.65: P 2/3 R 1 F1 0.8; 0.75: P 1/2 R 1/2; 0.85: P 1 R 1/2 F1 0.6667; 0.95: no hit
    f = lone_frontier(pairs, cached, vec_cached, vec_lookups, "identical", texts,
                      precision=0.9, recall=0.5, grid=grid)
    assert f == {"best_f1": 0.8, "best_f1_threshold": 0.65, "recall_at_precision": 0.5,
                 "at_or_above": True}
    below = lone_frontier(pairs, cached, vec_cached, vec_lookups, "identical", texts,
                          precision=0.6, recall=0.5, grid=grid)
    assert (below["recall_at_precision"], below["at_or_above"]) == (1.0, False)
