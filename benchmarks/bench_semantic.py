"""Semantic-cache quality and lookup latency: blendcache vs one uniform threshold vs GPTCache.

Protocol: every distinct ``a`` of the pair file is cached once (one namespace; an ``a`` shared
by several pairs is one entry), then every ``b`` is looked up. A hit is *true* when it returns
the pair's own ``a`` and the pair is labelled same-answer, or (protocol ``identical``, the
default) when the cached query's text is the lookup's own text after Unicode NFKC, case
folding and collapsing whitespace: serving the answer to the identical question is right,
whatever pair it came from. Protocol ``literal`` counts such hits false unless they are the
pair's own (the figures measured before the default changed). Every other hit is *false*.
precision = true / (true + false); recall = true / lookups that have a true hit to find
(same-answer pairs, and under ``identical`` also lookups whose own text is cached);
false_hit_rate = false hits / lookups (per pair category: over that category's lookups). All systems share the same
embeddings (all-MiniLM-L6-v2). Latency: the query embedding (uncached, one query at a time) and
the HNSW search over ``scale_n`` vectors (random unit vectors plus the real entries).
Beside each system, the lone cosine threshold's frontier under the same protocol: its best F1
over a threshold sweep, and its best recall at the system's precision (``at_or_above``: the
system's recall is at least that). Systems ``blendcache_rules`` / ``blendcache_learned`` force
the hit decision (``SemanticConfig.decision``); ``blendcache`` is the served default.

    python benchmarks/bench_semantic.py --pairs ../shared/data/semantic/fow_cache/pairs.jsonl
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from blendcache.benchmarks._common import cpu_name, git_revision, write_result
from blendcache.config import SemanticConfig
from blendcache.index.calibrate import LabelledPair, load_pairs
from blendcache.index.embedder import Embedder
from blendcache.index.hnsw import make_index
from blendcache.index.semantic_cache import CachedAnswer, SemanticCache, index_params
from blendcache.storage.semantic_store import SemanticStore

UNIFORM_THRESHOLD = 0.9
GPTCACHE_THRESHOLD = 0.8  # GPTCache's default (its own 0-1 scale: cosine 0.6 here)

# A system answers: for each lookup text, the cached `a` text it hit, or None.
Lookup = Callable[[Sequence[str], Sequence[str]], list[str | None]]


PROTOCOLS = ("identical", "literal")


def normalize(text: str) -> str:
    """A query's text for the ``identical`` rule: NFKC, case folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _is_true(pair: LabelledPair, hit: str, protocol: str) -> bool:
    return (hit == pair.a and pair.same) or (
        protocol == "identical" and normalize(hit) == normalize(pair.b))


def _metrics(pairs: Sequence[LabelledPair], hits: Sequence[str | None],
             protocol: str = "identical", cached: frozenset[str] = frozenset()
             ) -> dict[str, float]:
    """Precision, recall, F1 and false-hit rate of ``hits`` (the cached query each lookup got,
    or None). ``cached``: the normalised cached texts; under ``identical`` a lookup whose own
    text is among them has a true hit to find, so it counts in recall's denominator."""
    true = sum(1 for p, h in zip(pairs, hits) if h is not None and _is_true(p, h, protocol))
    false = sum(1 for p, h in zip(pairs, hits) if h is not None) - true
    positives = sum(1 for p in pairs
                    if p.same or (protocol == "identical" and normalize(p.b) in cached))
    precision = true / (true + false) if true + false else 0.0
    recall = true / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
        "false_hit_rate": round(false / len(pairs), 4) if pairs else 0.0,
    }


def _per_category(pairs, hits, protocol: str = "identical",
                  cached: frozenset[str] = frozenset()) -> dict[str, dict[str, float]]:
    out = {}
    for cat in sorted({p.category or "-" for p in pairs}):
        idx = [i for i, p in enumerate(pairs) if (p.category or "-") == cat]
        out[cat] = _metrics([pairs[i] for i in idx], [hits[i] for i in idx], protocol, cached)
    return out


HALVES = ("all", "even", "odd")


def pick_half(pairs: list[LabelledPair], half: str) -> list[LabelledPair]:
    """The pairs whose id ends in an even or odd number (``all``: every pair). The served
    thresholds and verifier were designed on the even half: report the odd one."""
    if half not in HALVES:
        raise ValueError(f"unknown half {half!r}; one of {HALVES}")
    if half == "all":
        return pairs
    def number(pair: LabelledPair) -> int:
        digits = re.search(r"(\d+)$", pair.id or "")
        if digits is None:
            raise ValueError(f"--half needs pair ids ending in a number, got {pair.id!r}")
        return int(digits.group(1))
    return [p for p in pairs if number(p) % 2 == (0 if half == "even" else 1)]


def run_blendcache(cached, lookups, embedder, config: SemanticConfig) -> list[str | None]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SemanticStore(f"sqlite:///{tmp}/bench.db")
        cache = SemanticCache(config, store=store, embedder=embedder)
        ns = dict(tenant="bench", category=config.default_category, model="bench")
        for text in cached:
            cache.store(text, CachedAnswer(text, "stop"), **ns)
        hits = [cache.lookup(q, **ns) for q in lookups]
        store.engine.dispose()
        return [h.cached_query if h else None for h in hits]


def run_uniform(cached, lookups, vec_cached, vec_lookups, threshold) -> list[str | None]:
    sims = vec_lookups @ vec_cached.T  # (L, C)
    best = sims.argmax(axis=1)
    return [
        cached[j] if sims[i, j] >= threshold else None for i, j in enumerate(best.tolist())
    ]


def run_gptcache(cached, lookups, embedder, threshold=GPTCACHE_THRESHOLD) -> list[str | None]:
    """GPTCache 0.1.44 as its README sets up a similar cache: sqlite + faiss, distance eval."""
    from gptcache.adapter.api import get, put

    cache = make_gptcache(embedder, max_size=len(cached) + 1000, threshold=threshold)
    for text in cached:
        put(text, text, cache_obj=cache)
    hits = [get(q, cache_obj=cache) for q in lookups]
    return hits


def make_gptcache(embedder, *, max_size: int, threshold: float = GPTCACHE_THRESHOLD):
    """An empty GPTCache 0.1.44 cache as its README sets one up (sqlite + faiss, distance
    evaluation) over ``embedder``; use it with ``gptcache.adapter.api.put/get``."""
    from gptcache import Cache, Config
    from gptcache.manager import CacheBase, VectorBase, get_data_manager
    from gptcache.processor.pre import get_prompt
    from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

    # NOTE: GPTCache flushes its faiss file at interpreter exit; the folder must outlive that,
    # so its removal is registered first (atexit runs last-registered first).
    tmp = tempfile.mkdtemp(prefix="gptcache-")
    atexit.register(shutil.rmtree, tmp, True)
    data_manager = get_data_manager(
        CacheBase("sqlite", sql_url=f"sqlite:///{tmp}/gptcache.db"),
        VectorBase("faiss", dimension=embedder.dim, index_path=f"{tmp}/faiss.index"),
        max_size=max_size,  # NOTE: its default keeps only 1,000 entries
    )
    cache = Cache()
    cache.init(
        pre_embedding_func=get_prompt,
        embedding_func=lambda text, **_: embedder.embed([text])[0],
        data_manager=data_manager,
        similarity_evaluation=SearchDistanceEvaluation(),
        config=Config(similarity_threshold=threshold),
    )
    return cache


# systems that are blendcache with one decision forced (the served defaults otherwise)
DECISIONS = {"blendcache_rules": "rules", "blendcache_learned": "learned"}
FRONTIER_GRID = np.round(np.arange(0.30, 1.0001, 0.005), 3)


def lone_frontier(pairs, cached, vec_cached, vec_lookups, protocol, texts, *, precision: float,
                  recall: float, grid: np.ndarray = FRONTIER_GRID) -> dict:
    """A lone cosine threshold swept over ``grid`` under the same protocol: its best F1, and
    its best recall among thresholds with precision >= ``precision`` (a system's); the system
    is on or above that frontier when its ``recall`` is at least that."""
    sims = vec_lookups @ vec_cached.T  # (L, C)
    best = sims.argmax(axis=1)
    top = sims[np.arange(len(best)), best]
    best_f1, best_f1_at, recall_at = 0.0, None, 0.0
    for threshold in grid:
        hits = [cached[j] if s >= threshold else None for j, s in zip(best.tolist(), top)]
        m = _metrics(pairs, hits, protocol, texts)
        if m["f1"] > best_f1:
            best_f1, best_f1_at = m["f1"], float(threshold)
        if m["precision"] >= precision and m["recall"] > 0:
            recall_at = max(recall_at, m["recall"])
    return {"best_f1": best_f1, "best_f1_threshold": best_f1_at,
            "recall_at_precision": recall_at, "at_or_above": recall >= recall_at}


def measure_latency(lookups, embedder, *, scale_n, vec_cached, backend, top_k, seed=0,
                    index_kwargs: dict | None = None) -> dict:
    """Query embedding and index search times at ``scale_n`` entries (random unit vectors plus
    the real ones), and the index's recall@1 against exact search there: over the real lookups,
    and over 500 stored random vectors perturbed slightly (queries with one clear nearest
    neighbour among 100k look-alikes, where a graph search can lose its way)."""
    embed_ms = _embed_ms(embedder, lookups)
    rng = np.random.default_rng(seed)
    n_random = max(scale_n - len(vec_cached), 0)
    noise = _unit(rng.standard_normal((n_random, embedder.dim)).astype(np.float32))
    index = make_index(backend, embedder.dim, capacity=scale_n, **(index_kwargs or {}))
    index.add(np.arange(n_random, dtype=np.int64), noise)
    index.add(np.arange(n_random, n_random + len(vec_cached), dtype=np.int64), vec_cached)
    vec_lookups = embedder.embed(list(lookups))
    for vec in vec_lookups[:20]:  # warm up
        index.search(vec, top_k)
    search_ms = []
    for vec in vec_lookups:
        start = time.perf_counter()
        index.search(vec, top_k)
        search_ms.append((time.perf_counter() - start) * 1000.0)
    stored = np.concatenate([noise, vec_cached])  # row i is id i
    picked = rng.choice(n_random, size=min(500, n_random), replace=False)
    perturbed = _unit(noise[picked] + 0.05 * rng.standard_normal(noise[picked].shape))
    return {
        "lookup_ms": {
            "embed_p50": round(float(np.percentile(embed_ms, 50)), 3),
            "search_p50": round(float(np.percentile(search_ms, 50)), 4),
            "search_p99": round(float(np.percentile(search_ms, 99)), 4),
        },
        "index_size": len(index),
        "recall_at_1": {"lookups": _recall_at_1(index, stored, vec_lookups),
                        "perturbed": _recall_at_1(index, stored, perturbed)},
    }


def _embed_ms(embedder, lookups) -> list[float]:
    """Time to embed each lookup alone, uncached (ms)."""
    out = []
    for text in lookups:
        start = time.perf_counter()
        embedder.embed([text], use_cache=False)
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def _spin() -> None:  # pragma: no cover - runs in the neighbour process
    while True:
        pass


def embed_latency_by_threads(embedder, lookups, threads: Sequence[int], *,
                             busy_neighbour: bool) -> dict[str, dict[str, float]]:
    """Query embedding p50/p99 (ms) on each torch thread count, side by side in one run; with
    ``busy_neighbour`` another process spins on one core meanwhile (a server's neighbour)."""
    import multiprocessing

    neighbour = None
    if busy_neighbour:
        neighbour = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
        neighbour.start()
    before = embedder.num_threads
    try:
        out = {}
        for n in threads:
            embedder.num_threads = n
            _embed_ms(embedder, lookups[:10])  # warm up
            ms = _embed_ms(embedder, lookups)
            out[str(n)] = {"p50": round(float(np.percentile(ms, 50)), 3),
                           "p99": round(float(np.percentile(ms, 99)), 3)}
        return out
    finally:
        embedder.num_threads = before
        if neighbour is not None:
            neighbour.terminate()
            neighbour.join()


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _recall_at_1(index, stored: np.ndarray, queries: np.ndarray) -> float:
    """Share of ``queries`` whose first index result is the exact nearest stored vector."""
    if not len(queries):
        return 0.0
    exact = (queries @ stored.T).argmax(axis=1)  # (Q,)
    found = [index.search(q, 1)[0][:1] for q in queries]
    return round(sum(int(len(f) == 1 and f[0] == e) for f, e in zip(found, exact))
                 / len(queries), 4)


def run_semantic_bench(
    pairs_path: str | Path,
    *,
    settings_semantic: SemanticConfig | None = None,
    json_out: str | Path | None = None,
    scale_n: int = 100_000,
    embedder: Embedder | None = None,
    systems: Sequence[str] = ("blendcache", "uniform_threshold", "gptcache"),
    exclude_identical: bool = False,
    protocol: str = "identical",
    half: str = "all",
    busy_neighbour: bool = False,
) -> dict:
    """Run the protocol of the module docstring; the summary dict (also written to json_out)."""
    config = settings_semantic or SemanticConfig()
    pairs = pick_half(load_pairs(pairs_path), half)
    if exclude_identical:
        # NOTE: in fow_cache 31 lookups `b` are word for word the `a` of another pair; the
        # protocol counts serving that identical query's answer as a false hit.
        cached_texts = {p.a for p in pairs}
        pairs = [p for p in pairs if p.b == p.a or p.b not in cached_texts]
    embedder = embedder or Embedder.from_config(config)
    cached = list(dict.fromkeys(p.a for p in pairs))
    lookups = [p.b for p in pairs]
    vec_cached = embedder.embed(cached)  # (C, dim)
    vec_lookups = embedder.embed(lookups)  # (L, dim)
    hits: dict[str, list[str | None]] = {}
    for name in systems:
        if name == "blendcache":
            hits[name] = run_blendcache(cached, lookups, embedder, config)
        elif name in DECISIONS:
            hits[name] = run_blendcache(cached, lookups, embedder, dataclasses.replace(
                config, decision=DECISIONS[name]))
        elif name == "uniform_threshold":
            hits[name] = run_uniform(cached, lookups, vec_cached, vec_lookups, UNIFORM_THRESHOLD)
        elif name == "gptcache":
            hits[name] = run_gptcache(cached, lookups, embedder)
        else:
            raise ValueError(f"unknown system {name!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; one of {PROTOCOLS}")
    texts = frozenset(normalize(a) for a in cached)
    summary = {
        "pairs": len(pairs),
        "protocol": protocol,
        "half": half,
        "systems": {name: _metrics(pairs, h, protocol, texts) for name, h in hits.items()},
        "lone_frontier": {
            name: lone_frontier(pairs, cached, vec_cached, vec_lookups, protocol, texts,
                                precision=m["precision"], recall=m["recall"])
            for name, m in ((n, _metrics(pairs, h, protocol, texts)) for n, h in hits.items())
        },
        "per_category": {name: _per_category(pairs, h, protocol, texts)
                         for name, h in hits.items()},
        **measure_latency(
            lookups, embedder, scale_n=scale_n, vec_cached=vec_cached,
            backend=config.backend, top_k=config.top_k,
            index_kwargs={k: v for k, v in index_params(config).items() if k != "rebuild_ratio"},
        ),
    }
    summary["embed_ms_by_threads"] = embed_latency_by_threads(
        embedder, lookups, (1, max(2, os.cpu_count() or 2)), busy_neighbour=busy_neighbour)
    summary["busy_neighbour"] = busy_neighbour
    if json_out is not None:
        Path(json_out).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def print_table(summary: dict) -> None:
    print(f"pairs: {summary['pairs']}   protocol: {summary['protocol']}   {_environment()}")
    print(f"{'system':<20}{'precision':>10}{'recall':>9}{'f1':>8}{'false_hit':>11}")
    for name, m in summary["systems"].items():
        print(f"{name:<20}{m['precision']:>10.3f}{m['recall']:>9.3f}{m['f1']:>8.3f}"
              f"{m['false_hit_rate']:>11.3f}")
    print(f"\nlone cosine threshold frontier (same protocol, thresholds "
          f"{FRONTIER_GRID[0]}-{FRONTIER_GRID[-1]})")
    print(f"{'system':<20}{'recall@its P':>14}{'best F1':>9}{'on/above':>10}")
    for name, f in summary["lone_frontier"].items():
        print(f"{name:<20}{f['recall_at_precision']:>14.3f}{f['best_f1']:>9.3f}"
              f"{'yes' if f['at_or_above'] else 'NO':>10}")
    cats = sorted({c for per in summary["per_category"].values() for c in per})
    print("\nfalse-hit rate per pair category (recall for paraphrase / near_repeat)")
    print(f"{'category':<14}" + "".join(f"{n:>20}" for n in summary["per_category"]))
    for cat in cats:
        row = []
        for per in summary["per_category"].values():
            m = per.get(cat, {})
            row.append(f"fh {m.get('false_hit_rate', 0):.3f} r {m.get('recall', 0):.3f}")
        print(f"{cat:<14}" + "".join(f"{r:>20}" for r in row))
    lat = summary["lookup_ms"]
    print(f"\nlookup at {summary['index_size']:,} entries: embed p50 {lat['embed_p50']:.2f} ms, "
          f"search p50 {lat['search_p50']:.3f} ms, p99 {lat['search_p99']:.3f} ms")
    by_threads = ", ".join(f"{n} thread(s) p50 {m['p50']:.2f} ms p99 {m['p99']:.2f} ms"
                           for n, m in summary["embed_ms_by_threads"].items())
    print(f"query embedding{' with a busy neighbour' if summary['busy_neighbour'] else ''}: "
          f"{by_threads}")
    rec = summary["recall_at_1"]
    print(f"recall@1 against exact search: lookups {rec['lookups']:.4f}, "
          f"perturbed stored vectors {rec['perturbed']:.4f}")


def _environment() -> str:
    return f"device: {cpu_name()}, fp32, git {git_revision()}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", required=True,
                        help="JSONL of {a, b, same_answer, category?} or {text_a, text_b, label}")
    parser.add_argument("--json", dest="json_out", metavar="OUT", help="write the summary JSON here")
    parser.add_argument("--scale-n", type=int, default=100_000,
                        help="index size for the latency measurement (default 100000)")
    parser.add_argument("--backend", default=None, help="hnswlib | faiss | faiss-flat")
    parser.add_argument(
        "--protocol", choices=PROTOCOLS, default="identical",
        help="identical (default): a hit on a cached query whose text is the lookup's own "
             "(NFKC, case-folded, whitespace collapsed) is true; literal: only the pair's own "
             "same-answer query is (the protocol of results measured before)",
    )
    parser.add_argument(
        "--busy-neighbour", action="store_true",
        help="time the query embedding on 1 and on every torch thread while another process "
             "spins on one core",
    )
    parser.add_argument(
        "--half", choices=HALVES, default="all",
        help="only the pairs whose id ends in an even or odd number (the served defaults were "
             "designed on the even half; report the odd one)",
    )
    parser.add_argument(
        "--systems", default="blendcache,uniform_threshold,gptcache",
        help="comma-separated: blendcache (served defaults), blendcache_rules, "
             "blendcache_learned, uniform_threshold, gptcache",
    )
    parser.add_argument(
        "--exclude-identical", action="store_true",
        help="drop lookups that are word for word another pair's cached query (kept to "
             "compare with results measured that way)",
    )


def run(args: argparse.Namespace, config: SemanticConfig | None = None) -> dict:
    """The benchmark with ``config`` (thresholds as configured; default: built-in)."""
    if args.backend:
        config = dataclasses.replace(config or SemanticConfig(), backend=args.backend)
    config = config or SemanticConfig()
    summary = run_semantic_bench(
        args.pairs, settings_semantic=config, scale_n=args.scale_n,
        exclude_identical=args.exclude_identical, protocol=args.protocol, half=args.half,
        busy_neighbour=args.busy_neighbour,
        systems=tuple(getattr(args, "systems", "blendcache,uniform_threshold,gptcache")
                      .split(",")),
    )
    print_table(summary)
    if args.json_out:
        # the embedder runs on the CPU (sentence-transformers, fp32)
        write_result(args.json_out, summary, vars(args), device=cpu_name(), dtype="float32",
                     model=config.embedder)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
