"""Train the learned hit decision (``index.decision``) on TRAIN halves only; write its JSON.

Out-of-fold probabilities (folds by the cached query, so one source's pairs stay together)
choose the threshold for the target precision and give the validation figures that decide the
served default; the model written is then refit on every training pair.

    python -m blendcache.benchmarks.train_decision \
        --pairs ../shared/data/semantic/fow_cache/pairs.jsonl:even \
        --pairs /tmp/semantic_sets/nq_rule/train.jsonl \
        --pairs /tmp/semantic_sets/hotpot_rule/train.jsonl --out index/decision_weights.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from blendcache.config import CategoryConfig, SemanticConfig
from blendcache.index.calibrate import LabelledPair, load_pairs
from blendcache.index.decision import (
    FEATURES,
    LogisticModel,
    feature_matrix,
    fit_logistic,
    threshold_for_precision,
)
from blendcache.index.verifier import Verifier

TARGET_PRECISION = 0.9
DATA = ("fow_cache/pairs.jsonl:even: the even ids of fow_cache (the half the rules were designed "
        "on); nq_rule/train.jsonl, hotpot_rule/train.jsonl: the train halves written by "
        "python -m blendcache.benchmarks.semantic_sets (seed 16) from "
        "../shared/data/rag/nq_open_oracle.jsonl.gz and hotpotqa_distractor_100.json. "
        "Held-out halves (fow_cache odd ids, */heldout.jsonl) were never read.")
FOLDS = 5


def load_spec(spec: str) -> tuple[str, list[LabelledPair]]:
    """``FILE`` or ``FILE:even`` / ``FILE:odd`` (pairs whose id ends in an even / odd number)."""
    from blendcache.benchmarks.bench_semantic import pick_half

    path, _, half = spec.partition(":") if spec.endswith((":even", ":odd")) else (spec, "", "")
    return spec, pick_half(load_pairs(path), half or "all")


def _fold(text: str, folds: int) -> int:
    return hashlib.sha256(text.encode()).digest()[0] % folds


def prf(accepted: np.ndarray, same: np.ndarray) -> dict[str, float]:
    """Pair-level precision, recall, F1 of accepting ``accepted``."""
    tp = int((accepted & same).sum())
    precision = tp / accepted.sum() if accepted.sum() else 0.0
    recall = tp / same.sum() if same.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def lone_frontier(sims: np.ndarray, same: np.ndarray, precision: float) -> dict[str, float]:
    """Over every cosine threshold: the best F1, and the best recall at >= ``precision``."""
    best_f1, recall_at = 0.0, 0.0
    for t in np.unique(sims):
        m = prf(sims >= t, same)
        best_f1 = max(best_f1, m["f1"])
        if m["precision"] >= precision:
            recall_at = max(recall_at, m["recall"])
    return {"best_f1": best_f1, "recall_at_precision": recall_at}


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: Sequence[str], *, l2: float,
                folds: int = FOLDS) -> np.ndarray:
    fold = np.array([_fold(g, folds) for g in groups])
    probs = np.zeros(len(y))
    for k in range(folds):
        test = fold == k
        mean, scale, coef, intercept = fit_logistic(x[~test], y[~test], l2=l2)
        model = LogisticModel(FEATURES, tuple(mean), tuple(scale), tuple(coef), intercept, 0.5)
        probs[test] = model.probability(x[test])
    return probs


def leave_one_set_out(names: Sequence[str], xs: Sequence[np.ndarray], ys: Sequence[np.ndarray],
                      *, target_precision: float, l2: float, floor: float) -> dict:
    """Per training set: the model fit (and its threshold chosen) on the other sets, scored
    on this one beside the lone frontier there (how well it carries to a set it never saw)."""
    out = {}
    for k, name in enumerate(names):
        x = np.concatenate([xi for i, xi in enumerate(xs) if i != k])
        y = np.concatenate([yi for i, yi in enumerate(ys) if i != k])
        mean, scale, coef, intercept = fit_logistic(x, y, l2=l2)
        model = LogisticModel(FEATURES, tuple(mean), tuple(scale), tuple(coef), intercept, 0.5)
        probs = np.where(x[:, 0] >= floor, model.probability(x), 0.0)
        threshold = threshold_for_precision(probs, y.astype(bool),
                                            target_precision=target_precision)
        same = ys[k].astype(bool)
        m = prf((model.probability(xs[k]) >= threshold) & (xs[k][:, 0] >= floor), same)
        out[name] = {"learned": m, "lone": lone_frontier(xs[k][:, 0], same, m["precision"])}
    return out


def train(specs: Sequence[str], *, embedder, target_precision: float = TARGET_PRECISION,
          l2: float = 1.0, command: str = "") -> LogisticModel:
    """The model (threshold from out-of-fold probabilities) and, in ``about``, per training
    set: out-of-fold learned vs rules (served threshold + verifier) vs the lone frontier."""
    verifier = Verifier(vocabulary=getattr(embedder, "vocabulary", None))
    floor = CategoryConfig(name="default").threshold
    sets, xs, ys, sims_all, groups = [], [], [], [], []
    for spec in specs:
        name, pairs = load_spec(spec)
        name = f"{Path(name).parent.name}/{Path(name).name}"
        sims = np.einsum("nd,nd->n", embedder.embed([p.a for p in pairs]),
                         embedder.embed([p.b for p in pairs]))  # (n,)
        sets.append((name, pairs, sims))
        xs.append(feature_matrix(pairs, sims, verifier=verifier))
        ys.append(np.array([p.same for p in pairs], dtype=np.float64))
        sims_all.append(sims)
        groups += [f"{name}:{p.a}" for p in pairs]
    x, y = np.concatenate(xs), np.concatenate(ys)
    probs = out_of_fold(x, y, groups, l2=l2)
    above_floor = np.concatenate(sims_all) >= floor
    # NOTE: served, the decision only sees candidates above the category threshold (the floor)
    threshold = threshold_for_precision(np.where(above_floor, probs, 0.0), y.astype(bool),
                                        target_precision=target_precision)
    validation, start = {}, 0
    for (name, pairs, sims), xi in zip(sets, xs):
        idx = slice(start, start + len(pairs))
        start += len(pairs)
        same = y[idx].astype(bool)
        learned = prf((probs[idx] >= threshold) & (sims >= floor), same)
        rules = prf(np.array([s >= floor and verifier.verify(p.b, p.a, similarity=float(s))
                              .accepted for p, s in zip(pairs, sims)]), same)
        validation[name] = {"pairs": len(pairs), "learned": learned, "rules": rules,
                            "lone_at_learned": lone_frontier(sims, same, learned["precision"]),
                            "lone_at_rules": lone_frontier(sims, same, rules["precision"])}
    mean, scale, coef, intercept = fit_logistic(x, y, l2=l2)
    loso = leave_one_set_out([n for n, _, _ in sets], xs, ys, target_precision=target_precision,
                             l2=l2, floor=floor)
    about = {"command": command, "data": DATA, "train_sets": {n: len(p) for n, p, _ in sets},
             "target_precision": target_precision, "l2": l2, "floor": floor,
             "threshold_from": f"{FOLDS}-fold out-of-fold probabilities, folds by cached query",
             "validation_out_of_fold": validation, "leave_one_set_out": loso}
    return LogisticModel(FEATURES, tuple(np.round(mean, 6)), tuple(np.round(scale, 6)),
                         tuple(np.round(coef, 6)), round(intercept, 6), round(threshold, 4),
                         about)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", action="append", required=True,
                        help="a TRAIN pair file, FILE or FILE:even|odd (repeat)")
    parser.add_argument("--out", required=True, help="where to write the model JSON")
    parser.add_argument("--target-precision", type=float, default=TARGET_PRECISION)
    parser.add_argument("--l2", type=float, default=1.0)
    args = parser.parse_args(argv)
    from blendcache.index.embedder import Embedder

    embedder = Embedder(SemanticConfig().embedder)
    command = "python -m blendcache.benchmarks.train_decision " + " ".join(
        [f"--pairs {Path(s).parent.name}/{Path(s).name}" for s in args.pairs]
        + [f"--target-precision {args.target_precision}", f"--l2 {args.l2}"])
    model = train(args.pairs, embedder=embedder, target_precision=args.target_precision,
                  l2=args.l2, command=command)
    Path(args.out).write_text(model.to_json(), encoding="utf-8")
    print(json.dumps({k: model.about[k] for k in ("validation_out_of_fold",
                                                   "leave_one_set_out")}))
    print("threshold", model.threshold, dict(zip(FEATURES, model.coef)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
