"""Train the learned hit decision (``index.decision``) on TRAIN halves only; write its JSON.

Out-of-fold probabilities (folds by the cached query, so one source's pairs stay together)
choose the threshold for the target precision and give the validation figures that decide the
served default; the model written is then refit on every training pair.

``--protocol cache`` trains on what a bounded category's cache judges instead of isolated pairs:
per training set every ``a`` is cached, and each ``b`` meets its top-k candidates above the
category threshold, labelled right when serving that candidate's answer is (the candidate is
b's own partner of a same-answer pair, or b's own text after NFKC + casefold + whitespace
collapse: the protocol benchmarks/bench_guarantee.py judges hits by). The best candidate of a
full cache is often a near neighbour that is not the partner; isolated pairs never show one.

    python -m blendcache.benchmarks.train_decision \
        --pairs ../shared/data/semantic/fow_cache/pairs.jsonl:even \
        --pairs /tmp/semantic_sets/nq_rule/train.jsonl \
        --pairs /tmp/semantic_sets/hotpot_rule/train.jsonl --out index/decision_weights.json
    python -m blendcache.benchmarks.train_decision --protocol cache ... --out /tmp/cache.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from blendcache.benchmarks._common import cpu_name, run_record
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
PROTOCOLS = ("pairs", "cache")
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


def cache_rows(pairs: Sequence[LabelledPair], *, embedder, floor: float, top_k: int
               ) -> tuple[list[LabelledPair], np.ndarray]:
    """What the cache judges: every distinct ``a`` cached, each pair's ``b`` against its
    ``top_k`` most similar cached queries at >= ``floor`` (exact cosine search). One row per
    (lookup, candidate) as LabelledPair(a=candidate, b=lookup, same=serving it is right), and
    the rows' similarities."""
    from blendcache.benchmarks.bench_semantic import normalize

    cached = list(dict.fromkeys(p.a for p in pairs))
    sims = embedder.embed([p.b for p in pairs]) @ embedder.embed(cached).T  # (pairs, cached)
    rows, row_sims = [], []
    for pair, sim in zip(pairs, sims):
        for j in np.argsort(-sim, kind="stable")[:top_k]:
            if sim[j] < floor:
                break  # sorted best first
            right = (cached[j] == pair.a and pair.same) or normalize(cached[j]) == normalize(
                pair.b)
            rows.append(LabelledPair(a=cached[j], b=pair.b, same=bool(right),
                                     category=pair.category, id=pair.id))
            row_sims.append(min(float(sim[j]), 1.0))  # float32 rounding can exceed 1
    return rows, np.array(row_sims, dtype=np.float64)


def load_rows(spec: str, *, embedder, protocol: str, floor: float, top_k: int
              ) -> tuple[str, list[LabelledPair], np.ndarray]:
    """(set name, rows, their similarities) of one TRAIN pair file under ``protocol``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; one of {PROTOCOLS}")
    name, pairs = load_spec(spec)
    name = f"{Path(name).parent.name}/{Path(name).name}"
    if protocol == "cache":
        return (name, *cache_rows(pairs, embedder=embedder, floor=floor, top_k=top_k))
    sims = np.einsum("nd,nd->n", embedder.embed([p.a for p in pairs]),
                     embedder.embed([p.b for p in pairs]))  # (n,)
    return name, pairs, sims


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
          l2: float = 1.0, command: str = "", protocol: str = "pairs",
          top_k: int | None = None) -> LogisticModel:
    """The model (threshold from out-of-fold probabilities) and, in ``about``, per training
    set: out-of-fold learned vs rules (served threshold + verifier) vs the lone frontier.
    Under ``protocol`` "cache" a row is a (lookup, candidate) of ``cache_rows``."""
    verifier = Verifier(vocabulary=getattr(embedder, "vocabulary", None))
    floor = CategoryConfig(name="default").threshold
    top_k = top_k or SemanticConfig().top_k
    sets, xs, ys, sims_all, groups = [], [], [], [], []
    for spec in specs:
        name, pairs, sims = load_rows(spec, embedder=embedder, protocol=protocol, floor=floor,
                                      top_k=top_k)
        sets.append((name, pairs, sims))
        xs.append(feature_matrix(pairs, sims, verifier=verifier))
        ys.append(np.array([p.same for p in pairs], dtype=np.float64))
        sims_all.append(sims)
        # NOTE: folds keep a cached query's pairs together; under the cache protocol, a
        # lookup's candidates (one decision of the cache)
        groups += [f"{name}:{p.b if protocol == 'cache' else p.a}" for p in pairs]
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
    about = {"command": command, "data": DATA, "protocol": protocol,
             **({"top_k": top_k, "rows": "per lookup b, its top_k cached a at >= floor; right: "
                 "b's own same-answer partner or b's own normalised text"}
                if protocol == "cache" else {}),
             "train_sets": {n: len(p) for n, p, _ in sets},
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
    parser.add_argument("--protocol", choices=PROTOCOLS, default="pairs",
                        help="pairs: each labelled pair alone (the served weights); cache: "
                             "every a cached, each b against its top-k candidates")
    parser.add_argument("--top-k", type=int, default=SemanticConfig().top_k,
                        help="candidates per lookup under --protocol cache (default: served)")
    args = parser.parse_args(argv)
    from blendcache.index.embedder import Embedder

    embedder = Embedder(SemanticConfig().embedder)
    command = "python -m blendcache.benchmarks.train_decision " + " ".join(
        [f"--pairs {Path(s).parent.name}/{Path(s).name}" for s in args.pairs]
        + [f"--target-precision {args.target_precision}", f"--l2 {args.l2}"]
        + ([f"--protocol cache --top-k {args.top_k}"] if args.protocol == "cache" else []))
    model = train(args.pairs, embedder=embedder, target_precision=args.target_precision,
                  l2=args.l2, command=command, protocol=args.protocol, top_k=args.top_k)
    # The model file also says which revision made it on which machine (a result file).
    record = run_record(vars(args), device=cpu_name(), dtype="float32",
                        model=SemanticConfig().embedder)
    written = {**json.loads(model.to_json()), "run": record}
    Path(args.out).write_text(json.dumps(written, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: model.about[k] for k in ("validation_out_of_fold",
                                                   "leave_one_set_out")}))
    print("threshold", model.threshold, dict(zip(FEATURES, model.coef)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
