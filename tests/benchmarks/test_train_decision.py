"""The training script's pair-level figures, its leave-one-set-out check and the cache
protocol's rows."""

import json

import numpy as np
import pytest

from blendcache.benchmarks.train_decision import (
    cache_rows,
    leave_one_set_out,
    lone_frontier,
    prf,
    train,
)
from blendcache.index.calibrate import LabelledPair
from blendcache.index.decision import FEATURES


def test_prf_and_the_lone_frontier_on_four_pairs():
    same = np.array([True, False, True, False])
    assert prf(np.array([True, True, True, False]), same) == {
        "precision": 0.6667, "recall": 1.0, "f1": 0.8}
    sims = np.array([0.9, 0.8, 0.7, 0.6])
    # >= 0.9: P 1 R 0.5; >= 0.7: P 2/3 R 1 (F1 0.8); >= 0.6: P 0.5 R 1
    assert lone_frontier(sims, same, 0.9) == {"best_f1": 0.8, "recall_at_precision": 0.5}
    assert lone_frontier(sims, same, 0.6) == {"best_f1": 0.8, "recall_at_precision": 1.0}


def test_leave_one_set_out_scores_each_set_with_a_model_fit_on_the_others():
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for _ in range(3):
        y = np.repeat([0.0, 1.0], 40)
        x = np.zeros((80, len(FEATURES)))
        x[:, 0] = 0.7 + 0.2 * y + rng.normal(0, 0.03, 80)  # similarity separates the labels
        xs.append(x)
        ys.append(y)
    out = leave_one_set_out(["a", "b", "c"], xs, ys, target_precision=0.9, l2=1.0, floor=0.62)
    assert list(out) == ["a", "b", "c"]
    for figures in out.values():
        # the threshold is the lowest that reaches 0.9 on the other sets: near 0.9 here, all found
        assert figures["learned"]["precision"] >= 0.85 and figures["learned"]["recall"] == 1.0
        assert figures["lone"]["recall_at_precision"] == 1.0


class _Vectors:
    """An embedder of fixed unit vectors, so the candidates' order is set by hand."""

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = {t: np.asarray(v) / np.linalg.norm(v) for t, v in vectors.items()}

    def embed(self, texts):
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)


ROUTER, MODEM = "How do I reset my router?", "How do I reset my modem and router?"
POOL = "Is the pool heated?"
CACHE_PAIRS = [
    LabelledPair(a=ROUTER, b="How can I reset my router?", same=True, id="p-1"),
    LabelledPair(a=MODEM, b="What is a router?", same=True, id="p-2"),
    LabelledPair(a=POOL, b="is the  POOL heated?", same=False, id="p-3"),
]
VECTORS = _Vectors({ROUTER: [0.8, 0.6, 0], MODEM: [1, 0, 0], POOL: [0, 0, 1],
                    "How can I reset my router?": [1, 0, 0],  # its neighbour beats its partner
                    "What is a router?": [0.6, 0.8, 0],  # partner 0.6 < floor, ROUTER 0.96
                    "is the  POOL heated?": [0, 0, 1]})


def test_cache_rows_label_what_the_cache_would_serve_not_the_pair():
    rows, sims = cache_rows(CACHE_PAIRS, embedder=VECTORS, floor=0.62, top_k=4)
    got = [(r.b, r.a, r.same, r.id) for r in rows]
    assert got == [
        ("How can I reset my router?", MODEM, False, "p-1"),  # best, a neighbour: wrong
        ("How can I reset my router?", ROUTER, True, "p-1"),  # its own partner: right
        ("What is a router?", ROUTER, False, "p-2"),  # partner below the floor: no row
        ("is the  POOL heated?", POOL, True, "p-3"),  # its own text, normalised: right
    ]
    np.testing.assert_allclose(sims, [1.0, 0.8, 0.96, 1.0], atol=1e-6)
    # top_k bounds the candidates per lookup: p-1 keeps only its (wrong) best neighbour
    rows, _ = cache_rows(CACHE_PAIRS, embedder=VECTORS, floor=0.62, top_k=1)
    assert [(r.a, r.same) for r in rows[:2]] == [(MODEM, False), (ROUTER, False)]


def two_train_sets(tmp_path) -> list[str]:
    """CACHE_PAIRS written as two train sets (leave-one-set-out needs a second one)."""
    specs = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        spec = tmp_path / name / "train.jsonl"
        spec.write_text("".join(json.dumps({"a": p.a, "b": p.b, "same_answer": p.same}) + "\n"
                                for p in CACHE_PAIRS))
        specs.append(str(spec))
    return specs


def test_train_under_the_cache_protocol_fits_on_the_candidate_rows(tmp_path):
    specs = two_train_sets(tmp_path)
    model = train(specs, embedder=VECTORS, protocol="cache", top_k=4)
    assert model.features == FEATURES
    assert model.about["protocol"] == "cache" and model.about["top_k"] == 4
    assert model.about["train_sets"] == {"one/train.jsonl": 4, "two/train.jsonl": 4}
    with pytest.raises(ValueError, match="unknown protocol"):
        train(specs, embedder=VECTORS, protocol="stream")


def test_the_written_model_records_its_run_and_still_loads(tmp_path, monkeypatch):
    import blendcache.index.embedder as embedder_module
    from blendcache.benchmarks.train_decision import main
    from blendcache.index.decision import load_model

    monkeypatch.setattr(embedder_module, "Embedder", lambda _name: VECTORS)
    specs = two_train_sets(tmp_path)
    out = tmp_path / "weights.json"
    assert main([*(f"--pairs={s}" for s in specs), "--out", str(out), "--protocol", "cache"]) == 0
    run = json.loads(out.read_text())["run"]
    assert run["git"] and run["device"] and run["options"]["protocol"] == "cache"
    assert load_model(out).features == FEATURES
