"""The error-rate guarantee on a labelled stream: realised error rate and hit rate per category,
blendcache with ``max_error_rate`` against the fixed-threshold default, a lone cosine threshold
and GPTCache's default, all replaying the same streams.

Stream: fow_cache's pairs (category ``pairs``) and conversations (conv-parts and conv-long,
one category per domain: billing, retail, services; a conversation's query is its messages
rendered one per line, ``role: text``, with context matching off since the whole exchange is
in the query). For each pair ``a`` is cached (once per text and category) and ``b`` looked up a
few steps later (0-10 pairs on), the order shuffled by the seed. A hit is right when it returns
the pair's own ``a`` and the pair is labelled same-answer, or a cached query whose text is the
lookup's own (NFKC, case folded, whitespace collapsed); else wrong. NOTE: exploration's answer
comparison and explicit feedback take that label here (a served hit gets explicit feedback with
probability ``feedback_rate``): this measures the decision rule, not the answer comparer
(tests/index/test_guarantee.py tests that). Error rate = wrong hits / hits (0 without hits);
hit rate = hits / lookups. The design looked at the even half of the pair ids only; the
committed result is the odd half.

With ``--sets DIR`` (benchmarks/semantic_sets.py's output) the rule-made sets' HELD-OUT halves
join as more categories, ``nq_rule`` (979 pairs) and ``hotpot_rule`` (246): streams long enough
for a bound to allow hits. Never their ``train.jsonl``: it trained the learned decision.

The bounded categories score candidates with the served ``guarantee_weights`` model
(index/decision_weights_cache.json, trained with ``train_decision --protocol cache``); with
``--weights FILE`` with FILE instead, e.g. index/decision_weights.json (isolated pairs). The
fixed-threshold baseline keeps the served hit decision either way.

    python -m blendcache.benchmarks.bench_guarantee --data ../shared/data/semantic/fow_cache \
        --sets /tmp/semantic_sets
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blendcache.benchmarks._common import cpu_name, git_revision, write_result
from blendcache.benchmarks.bench_semantic import (
    HALVES,
    UNIFORM_THRESHOLD,
    make_gptcache,
    normalize,
)
from blendcache.config import CategoryConfig, SemanticConfig
from blendcache.index.embedder import Embedder
from blendcache.index.guarantee import ErrorGuarantee
from blendcache.index.semantic_cache import CachedAnswer, SemanticCache
from blendcache.storage.feedback import FeedbackStore
from blendcache.storage.semantic_store import SemanticStore

DOMAINS = ("billing", "retail", "services")
RULE_SETS = ("nq_rule", "hotpot_rule")  # the categories --sets adds, their held-out halves
SCORE_BANDS = (0.5, 0.9, 0.99)  # explored candidates' error rate reported at scores >= these
BOUNDS = (0.02, 0.05)
BASELINES = ("default", "cosine", "gptcache")
TENANT, MODEL = "bench", "bench"


@dataclass(frozen=True)
class StreamPair:
    """A labelled pair of one category: cache ``a``, look up ``b``."""

    id: str
    category: str
    a: str
    b: str
    same: bool


def _number(pair_id: str) -> int:
    digits = re.search(r"(\d+)$", pair_id)
    if digits is None:
        raise ValueError(f"pair id {pair_id!r} does not end in a number")
    return int(digits.group(1))


def render(messages: list[dict]) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def load_stream_pairs(data_dir: str | Path, *, half: str) -> list[StreamPair]:
    """fow_cache's pairs and conversations, the ``half`` (even/odd ids, or all) of each."""
    if half not in HALVES:
        raise ValueError(f"unknown half {half!r}; one of {HALVES}")
    data = Path(data_dir)
    rows = [("pairs", json.loads(line)) for line in
            (data / "pairs.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    for part in ("conv-parts", "conv-long"):
        for domain in DOMAINS:
            path = data / part / f"{domain}.jsonl"
            rows += [(domain, json.loads(line)) for line in
                     path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for category, row in rows:
        if half != "all" and _number(row["id"]) % 2 != (0 if half == "even" else 1):
            continue
        a, b = row["a"], row["b"]
        out.append(StreamPair(row["id"], category, a if isinstance(a, str) else render(a),
                              b if isinstance(b, str) else render(b), bool(row["same_answer"])))
    return out


def load_set_pairs(sets_dir: str | Path) -> list[StreamPair]:
    """The held-out half of each rule-made set in ``sets_dir``, one category per set."""
    out = []
    for name in RULE_SETS:
        path = Path(sets_dir) / name / "heldout.jsonl"
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                out.append(StreamPair(row["id"], name, row["a"], row["b"],
                                      bool(row["same_answer"])))
    return out


def stream_events(pairs: Sequence[StreamPair], seed: int, *, max_gap: int = 10
                  ) -> list[tuple[str, StreamPair]]:
    """("store", pair) and ("lookup", pair) events: pairs in a shuffled order, each lookup
    0..``max_gap`` pairs after its store."""
    rng = random.Random(seed)
    order = list(pairs)
    rng.shuffle(order)
    keyed = []
    for i, pair in enumerate(order):
        keyed.append((float(i), 0, "store", pair))
        keyed.append((i + rng.randint(0, max_gap) + 0.5, 1, "lookup", pair))
    keyed.sort(key=lambda e: (e[0], e[1]))
    return [(kind, pair) for _, _, kind, pair in keyed]


def is_right(pair: StreamPair, hit_text: str) -> bool:
    return (hit_text == pair.a and pair.same) or normalize(hit_text) == normalize(pair.b)


# -- the systems: store(pair) / lookup(pair) -> (outcome, right) -----------------------------

class BlendcacheSystem:
    """blendcache's semantic cache over one temporary database; ``explore``: the guarantee's
    explorations are answered with the label (the stream's oracle)."""

    def __init__(self, config: SemanticConfig, embedder, *, seed: int, feedback_rate: float,
                 tmp: str):
        store = SemanticStore(f"sqlite:///{tmp}/semantic.db")
        self.store_db = store
        guarantee = ErrorGuarantee(config.categories, store=FeedbackStore(store.engine),
                                   seed=seed)
        self.cache = SemanticCache(config, store=store, embedder=embedder, guarantee=guarantee)
        self.rng = random.Random(seed + 7919)
        self.feedback_rate = feedback_rate
        self.cached: set[tuple[str, str]] = set()
        self.served = 0
        self.explored: list[tuple[str, float, bool]] = []  # (category, score, right)
        self.candidates: list[tuple[str, float, bool]] = []  # every one, explored or served

    def store(self, pair: StreamPair) -> None:
        if (pair.category, pair.a) not in self.cached:
            self.cached.add((pair.category, pair.a))
            self.cache.store(pair.a, CachedAnswer(pair.a, "stop"), tenant=TENANT,
                             category=pair.category, model=MODEL)

    def lookup(self, pair: StreamPair) -> tuple[str, bool | None]:
        hit = self.cache.lookup(pair.b, tenant=TENANT, category=pair.category, model=MODEL,
                                exploring=True)
        if hit is None:
            return "miss", None
        right = is_right(pair, hit.response.text)
        if hit.score is not None:
            self.candidates.append((pair.category, float(hit.score), right))
        if hit.explore:
            self.explored.append((pair.category, float(hit.score), right))
            self.cache.record_observation(hit, right, tenant=TENANT,
                                          source="audit" if hit.audit else "explore")
            return "explore", None
        self.served += 1
        response_id = f"r{self.served}"
        self.cache.remember_served(response_id, hit, tenant=TENANT)
        if self.rng.random() < self.feedback_rate:
            self.cache.feedback(response_id, right, tenant=TENANT)
        return "hit", right

    def close(self) -> None:
        self.store_db.engine.dispose()


class GPTCacheSystem:
    """GPTCache 0.1.44 with its default threshold, one cache per category."""

    def __init__(self, embedder, *, max_size: int):
        self.embedder, self.max_size = embedder, max_size
        self.caches: dict[str, object] = {}

    def _cache(self, category: str):
        if category not in self.caches:
            self.caches[category] = make_gptcache(self.embedder, max_size=self.max_size)
        return self.caches[category]

    def store(self, pair: StreamPair) -> None:
        from gptcache.adapter.api import put

        put(pair.a, pair.a, cache_obj=self._cache(pair.category))

    def lookup(self, pair: StreamPair) -> tuple[str, bool | None]:
        from gptcache.adapter.api import get

        hit = get(pair.b, cache_obj=self._cache(pair.category))
        return ("miss", None) if hit is None else ("hit", is_right(pair, hit))

    def close(self) -> None:
        pass


def semantic_config(categories: Sequence[str], *, bound: float | None = None,
                    cosine: bool = False, weights: str | None = None,
                    **guarantee) -> SemanticConfig:
    """One category per name, context matching off (the stream's queries carry it); a bound
    on each (``guarantee``: other CategoryConfig keys of the guarantee, e.g. audit_rate), or
    the lone cosine threshold without the verifier, or the served defaults. ``weights``: the
    bounded categories' score model (``guarantee_weights``; None: the committed one)."""
    extra = {"max_error_rate": bound, **guarantee} if bound is not None else {}
    if cosine:
        extra["threshold"] = UNIFORM_THRESHOLD
    cats = tuple(CategoryConfig(name=c, context_sensitive=False, ttl_s=float("inf"), **extra)
                 for c in categories)
    return SemanticConfig(categories=cats, default_category=cats[0].name, verify=not cosine,
                          guarantee_weights=weights)


def replay(system, events) -> list[tuple[str, str, bool | None]]:
    """(category, outcome, right) per lookup, in stream order."""
    out = []
    for kind, pair in events:
        if kind == "store":
            system.store(pair)
        else:
            outcome, right = system.lookup(pair)
            out.append((pair.category, outcome, right))
    return out


def hindsight_hit_rate(candidates: Sequence[tuple[float, bool]], lookups: int,
                       bound: float) -> float:
    """The hit rate of the best fixed score threshold chosen knowing every label of the run:
    the most candidates at scores >= t, over thresholds t whose wrong share there is <=
    ``bound``, per lookup. Not attainable by any rule that learns as it goes; the reference for
    how high a hit rate the bound allows on this stream at all."""
    if not candidates or not lookups:
        return 0.0
    scores = np.array([c[0] for c in candidates])
    wrong = np.array([not c[1] for c in candidates])
    order = np.argsort(-scores, kind="stable")
    n = np.arange(1, len(order) + 1)
    errors = np.cumsum(wrong[order])
    # a threshold serves every candidate tied with its score: only the last of a tie counts
    last_of_tie = np.append(scores[order][1:] != scores[order][:-1], True)
    ok = last_of_tie & (errors <= bound * n)
    return float(n[ok].max() / lookups) if ok.any() else 0.0


def summarise(records: list[tuple[str, str, bool | None]], categories: Sequence[str], *,
              explored: list[tuple[str, float, bool]] | None = None,
              candidates: list[tuple[str, float, bool]] | None = None,
              bound: float | None = None) -> dict:
    """Per category: lookups, hits, wrong hits, explorations and rates, and the same over the
    later half of the category's lookups (``late_*``: after the rule has seen the first half);
    with ``explored``, the (wrong, count) of the explored candidates at scores >= each of
    ``SCORE_BANDS`` (what the rule had to judge by); with ``candidates`` and ``bound``, the
    hindsight hit rate (``hindsight_hit_rate``)."""
    per = {}
    later = {c: (lambda rows: rows[len(rows) // 2:])([r for r in records if r[0] == c])
             for c in categories}
    later["all"] = [r for c in categories for r in later[c]]
    for cat in [*categories, "all"]:
        rows = [r for r in records if cat == "all" or r[0] == cat]
        hits = sum(r[1] == "hit" for r in rows)
        wrong = sum(r[1] == "hit" and not r[2] for r in rows)
        late = later[cat]
        late_hits = sum(r[1] == "hit" for r in late)
        late_wrong = sum(r[1] == "hit" and not r[2] for r in late)
        per[cat] = {"lookups": len(rows), "hits": hits, "wrong": wrong,
                    "explorations": sum(r[1] == "explore" for r in rows),
                    "error_rate": wrong / hits if hits else 0.0,
                    "hit_rate": hits / len(rows) if rows else 0.0,
                    "late_lookups": len(late),
                    "late_error_rate": late_wrong / late_hits if late_hits else 0.0,
                    "late_hit_rate": late_hits / len(late) if late else 0.0}
        if explored is not None:
            seen = [(score, right) for c, score, right in explored if cat in ("all", c)]
            per[cat]["explored_above"] = {
                str(band): [sum(not right for score, right in seen if score >= band),
                            sum(score >= band for score, _ in seen)] for band in SCORE_BANDS}
        if candidates is not None and bound is not None:
            per[cat]["hindsight_hit_rate"] = (
                hindsight_hit_rate([(s, r) for c, s, r in candidates if c == cat], len(rows),
                                   bound) if cat != "all" else None)
    return per


def curves(records: list[tuple[str, str, bool | None]], category: str | None = None
           ) -> dict[str, list[float]]:
    """Cumulative error rate (of hits so far) and hit rate (of lookups so far) per lookup (of
    ``category``; None: of every category)."""
    records = [r for r in records if category is None or r[0] == category]
    hits = np.cumsum([r[1] == "hit" for r in records])
    wrong = np.cumsum([r[1] == "hit" and not r[2] for r in records])
    n = np.arange(1, len(records) + 1)
    return {"error_rate": np.where(hits > 0, wrong / np.maximum(hits, 1), 0.0).tolist(),
            "hit_rate": (hits / n).tolist()}


def run_guarantee_bench(data_dir: str | Path, *, half: str = "odd", seeds: int = 5,
                        bounds: Sequence[float] = BOUNDS, baselines: Sequence[str] = BASELINES,
                        feedback_rate: float = 0.1, embedder=None, limit: int | None = None,
                        guarantee: dict | None = None, sets_dir: str | Path | None = None,
                        weights: str | Path | None = None) -> dict:
    """Every method over ``seeds`` shuffles of the stream; the summary dict. ``weights``: the
    bounded methods' decision model (None: the committed one)."""
    pairs = load_stream_pairs(data_dir, half=half)
    if limit is not None:
        pairs = pairs[:limit]
    if sets_dir is not None:
        pairs += load_set_pairs(sets_dir)
    order = ["pairs", *DOMAINS, *RULE_SETS]
    categories = sorted({p.category for p in pairs}, key=order.index)
    embedder = embedder or Embedder()
    embedder.embed(sorted({t for p in pairs for t in (p.a, p.b)}))  # warm its cache once
    methods = [f"guarantee_{b}" for b in bounds] + list(baselines)
    guarantee = dict(guarantee or {})
    result: dict = {"half": half, "design_half": "even",
                    "note": "the rule was designed looking at the even ids only; explorations "
                            "and explicit feedback take the pair's label (this measures the "
                            "decision rule, not the answer comparer)",
                    "sets": ("held-out halves of " + ", ".join(RULE_SETS) + " (their train "
                             "halves trained the learned decision; nothing of the guarantee "
                             "was tuned on either)") if sets_dir is not None else None,
                    "seeds": seeds, "pairs": len(pairs), "bounds": list(bounds),
                    "feedback_rate": feedback_rate, "categories": categories,
                    "weights": (str(weights) if weights is not None
                                else "decision_weights_cache.json"),
                    "guarantee": {k: getattr(CategoryConfig("x", **guarantee), k) for k in
                                  ("explore_rate", "audit_rate", "confidence")},
                    "lookups_per_category": {c: sum(p.category == c for p in pairs)
                                             for c in categories},
                    "methods": {}}
    for method in methods:
        per_seed, seed_curves = [], []
        for seed in range(seeds):
            events = stream_events(pairs, seed)
            with tempfile.TemporaryDirectory() as tmp:
                system = _system(method, categories, embedder, seed=seed,
                                 feedback_rate=feedback_rate, tmp=tmp, size=len(pairs),
                                 guarantee=guarantee, weights=weights)
                records = replay(system, events)
                system.close()
            bounded = method.startswith("guarantee_")
            per_seed.append(summarise(
                records, categories, explored=system.explored if bounded else None,
                candidates=system.candidates if bounded else None,
                bound=float(method.split("_", 1)[1]) if bounded else None))
            seed_curves.append({c: curves(records, None if c == "all" else c)
                                for c in [*categories, "all"]})
        result["methods"][method] = _aggregate(method, per_seed, seed_curves, categories)
    return result


def _system(method, categories, embedder, *, seed, feedback_rate, tmp, size, guarantee,
            weights=None):
    if method == "gptcache":
        return GPTCacheSystem(embedder, max_size=size + 1000)
    if method.startswith("guarantee_"):
        config = semantic_config(categories, bound=float(method.split("_", 1)[1]),
                                 weights=None if weights is None else str(weights), **guarantee)
    elif method in ("default", "cosine"):
        config = semantic_config(categories, cosine=method == "cosine")
    else:
        raise ValueError(f"unknown method {method!r}")
    return BlendcacheSystem(config, embedder, seed=seed, feedback_rate=feedback_rate, tmp=tmp)


def _aggregate(method: str, per_seed: list[dict], seed_curves: list[dict],
               categories: Sequence[str]) -> dict:
    bound = float(method.split("_", 1)[1]) if method.startswith("guarantee_") else None
    out: dict = {"bound": bound, "per_category": {}}
    for cat in [*categories, "all"]:
        rows = [s[cat] for s in per_seed]
        errors = [r["error_rate"] for r in rows]
        out["per_category"][cat] = {
            "error_rate_mean": round(float(np.mean(errors)), 4),
            "error_rate_max": round(float(np.max(errors)), 4),
            "hit_rate_mean": round(float(np.mean([r["hit_rate"] for r in rows])), 4),
            "hits_mean": round(float(np.mean([r["hits"] for r in rows])), 1),
            "wrong_mean": round(float(np.mean([r["wrong"] for r in rows])), 1),
            "explorations_mean": round(float(np.mean([r["explorations"] for r in rows])), 1),
            "late_lookups": rows[0]["late_lookups"],
            "late_hit_rate_mean": round(float(np.mean([r["late_hit_rate"] for r in rows])), 4),
            "late_error_rate_mean": round(float(np.mean([r["late_error_rate"] for r in rows])),
                                          4),
            "late_error_rate_max": round(float(np.max([r["late_error_rate"] for r in rows])), 4),
            "lookups": rows[0]["lookups"],
            "seeds_within_bound": (None if bound is None
                                   else sum(e <= bound for e in errors)),
        }
        if rows[0].get("hindsight_hit_rate") is not None:
            out["per_category"][cat]["hindsight_hit_rate_mean"] = round(
                float(np.mean([r["hindsight_hit_rate"] for r in rows])), 4)
        if "explored_above" in rows[0]:  # pooled over seeds: [wrong, explored]
            out["per_category"][cat]["explored_above"] = {
                band: [sum(r["explored_above"][band][0] for r in rows),
                       sum(r["explored_above"][band][1] for r in rows)]
                for band in rows[0]["explored_above"]}
    out["curves_mean"] = {  # per category (the whole stream: "all")
        cat: {k: np.round(np.mean([c[cat][k] for c in seed_curves], axis=0), 4).tolist()
              for k in ("error_rate", "hit_rate")} for cat in [*categories, "all"]}
    return out


def table(result: dict) -> str:
    sets = f" + {', '.join(RULE_SETS)} held-out halves" if result.get("sets") else ""
    lines = [f"error-rate guarantee, fow_cache {result['half']} half (design on the even half "
             f"only){sets}, {result['seeds']} seeds, {result['pairs']} pairs, explicit feedback "
             f"on {result['feedback_rate']:.0%} of served hits; {_environment()}",
             "guarantee: " + ", ".join(f"{k} {v}" for k, v in result["guarantee"].items())
             + (f"; its decision model: {Path(result['weights']).name}"
                if result.get("weights") else ""),
             "error = wrong hits / hits (mean and max over seeds), hit = hits / lookups, "
             "explore = explorations per seed (mean); late: the same over the later half of "
             "the category's lookups; hindsight: the hit rate of the best fixed score threshold "
             "knowing every label of the run (a reference, not attainable)",
             f"{'category':<10}{'lookups':>8}  {'method':<16}{'bound':>6}{'error mean':>11}"
             f"{'max':>7}{'within':>8}{'hit rate':>9}{'explore':>8}{'late err':>9}"
             f"{'late hit':>9}{'hindsight':>10}"]
    for cat in [*result["categories"], "all"]:
        for method, m in result["methods"].items():
            row = m["per_category"][cat]
            bound = "-" if m["bound"] is None else f"{m['bound']:.2f}"
            within = ("-" if row["seeds_within_bound"] is None
                      else f"{row['seeds_within_bound']}/{result['seeds']}")
            lines.append(f"{cat:<10}{row['lookups']:>8}  {method:<16}{bound:>6}"
                         f"{row['error_rate_mean']:>11.3f}{row['error_rate_max']:>7.3f}"
                         f"{within:>8}{row['hit_rate_mean']:>9.3f}"
                         f"{row['explorations_mean']:>8.1f}{row['late_error_rate_mean']:>9.3f}"
                         f"{row['late_hit_rate_mean']:>9.3f}"
                         + (f"{row['hindsight_hit_rate_mean']:>10.3f}"
                            if "hindsight_hit_rate_mean" in row else f"{'-':>10}"))
        lines.append("")
    bounded = [m for m in result["methods"].values() if m["bound"] is not None]
    if bounded and "explored_above" in bounded[0]["per_category"]["all"]:
        m = bounded[0]
        lines.append(f"what the rule judged by: explored candidates' error rate at scores >= "
                     f"{', '.join(map(str, SCORE_BANDS))} (wrong / explored, pooled over seeds; "
                     f"bound {m['bound']})")
        for cat in [*result["categories"], "all"]:
            bands = m["per_category"][cat]["explored_above"]
            lines.append(f"{cat:<12}" + "".join(
                f"  >= {band}: {w / n if n else 0.0:.3f} ({w}/{n})"
                for band, (w, n) in bands.items()))
    return "\n".join(lines)


def plot(result: dict, out: str | Path) -> None:
    """Error rate and hit rate (cumulative, mean over seeds) along each long category's stream
    (fow_cache's pairs and the rule-made sets; every category's stream if none)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("the plot needs matplotlib: pip install 'blendcache[bench]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [c for c in ("pairs", *RULE_SETS) if c in result["categories"]] or ["all"]
    fig, axes = plt.subplots(2, len(shown), figsize=(5.5 * len(shown), 7), squeeze=False)
    for col, cat in enumerate(shown):
        err_ax, hit_ax = axes[0][col], axes[1][col]
        for method, m in result["methods"].items():
            c = m["curves_mean"][cat]
            x = np.arange(1, len(c["error_rate"]) + 1)
            err_ax.plot(x, c["error_rate"], label=method)
            hit_ax.plot(x, c["hit_rate"], label=method)
        for bound in result["bounds"]:
            err_ax.axhline(bound, color="grey", linestyle="--", linewidth=1)
            err_ax.text(1, bound, f" {bound}", va="bottom", fontsize=7, color="grey")
        err_ax.set_ylim(0, 0.6)
        err_ax.set_title(f"{cat} ({result['lookups_per_category'].get(cat, result['pairs'])} "
                         "lookups)", fontsize=10)
        hit_ax.set_ylim(0, 1)
        hit_ax.set_xlabel(f"lookups of {cat} in the stream")
    axes[0][0].set_ylabel("error rate of hits so far")
    axes[1][0].set_ylabel("hit rate so far")
    axes[0][0].legend(fontsize=7, ncol=2)
    sets = " + rule-made sets' held-out halves" if result.get("sets") else ""
    fig.suptitle(f"fow_cache {result['half']} half{sets}, mean over {result['seeds']} seeds "
                 f"(git {git_revision()})", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _environment() -> str:
    return f"device: {cpu_name()}, fp32, git {git_revision()}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="the fow_cache folder (pairs.jsonl, conv-parts/, conv-long/)")
    parser.add_argument("--sets", default=None, metavar="DIR",
                        help="semantic_sets' output folder: add the held-out halves of nq_rule "
                             "and hotpot_rule as categories (never their train halves)")
    parser.add_argument("--half", choices=HALVES, default="odd",
                        help="pair ids ending in an odd number (default: the held-out half), "
                             "even (the design half) or all")
    parser.add_argument("--seeds", type=int, default=5, help="stream shuffles (default 5)")
    parser.add_argument("--bounds", default=",".join(map(str, BOUNDS)),
                        help="max_error_rate values, comma-separated (default 0.02,0.05)")
    parser.add_argument("--baselines", default=",".join(BASELINES),
                        help="comma-separated: default (the learned decision at its "
                             "threshold), cosine (a lone cosine threshold), gptcache")
    parser.add_argument("--feedback-rate", type=float, default=0.1,
                        help="share of served hits that get explicit feedback (default 0.1)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    parser.add_argument("--audit-rate", type=float, default=None,
                        help="the bounded categories' audit_rate (default: CategoryConfig's)")
    parser.add_argument("--confidence", type=float, default=None,
                        help="the bounded categories' confidence (default: CategoryConfig's)")
    parser.add_argument("--weights", default=None, metavar="FILE",
                        help="the bounded categories' score model (train_decision's JSON; "
                             "default: the served guarantee_weights); the baselines keep theirs")
    parser.add_argument("--out", default=None, metavar="STEM",
                        help="write STEM.json, STEM.txt and STEM.png")


def run(args: argparse.Namespace) -> dict:
    result = run_guarantee_bench(
        args.data, half=args.half, seeds=args.seeds,
        bounds=tuple(float(b) for b in args.bounds.split(",") if b),
        baselines=tuple(b for b in args.baselines.split(",") if b),
        feedback_rate=args.feedback_rate, limit=args.limit, sets_dir=args.sets,
        weights=args.weights,
        guarantee={k: v for k, v in (("audit_rate", args.audit_rate),
                                     ("confidence", args.confidence)) if v is not None})
    text = table(result)
    print(text)
    if args.out:
        write_result(f"{args.out}.json", result, vars(args), device=cpu_name(),
                     dtype="float32", model=SemanticConfig().embedder)
        Path(f"{args.out}.txt").write_text(text + "\n", encoding="utf-8")
        plot(result, f"{args.out}.png")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
