"""The training script's pair-level figures and its leave-one-set-out check."""

import numpy as np

from blendcache.benchmarks.train_decision import leave_one_set_out, lone_frontier, prf
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
