"""``blendcache bench serve``: a served workload, measured from the client's side.

A stream of RAG requests whose documents recur (questions drawn from a pool of samples by a
Zipf law, so a few come back often; a share of the repeats with their passages in another
order, as a retriever returns them) is sent over HTTP, streamed, to a real server on loopback,
once per system, each from an empty cache:

- ``model_only``: the proxy with both caches off (every request a full prefill);
- ``chunk_cache``: chunk KV reuse and fusion only (semantic cache off);
- ``blendcache``: the served defaults (semantic cache, then chunk fusion);
- ``blendcache_warmed``: the same, with the pool's documents stored ahead through
  ``POST /v1/blendcache/documents`` (a corpus indexed before it is queried).

TTFT is the client's: from sending the request to the first streamed token, so it includes
waiting for the engine (a request queued behind another, or behind a cold request's chunk
store). ``prefill_ms`` is the server's own ``ttft_ms`` for comparison. Agreement is the share
of requests answered word for word as ``model_only`` answered the same request.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from blendcache.benchmarks._common import device_name, percentile, write_result
from blendcache.benchmarks.bench_blend import PROMPTS
from blendcache.config import Settings
from blendcache.errors import ConfigError
from blendcache.readers import read_json_rows

# system -> (chunk cache on, semantic cache on, documents stored ahead)
SYSTEMS = {
    "model_only": (False, False, False),
    "chunk_cache": (True, False, False),
    "blendcache": (True, True, False),
    "blendcache_warmed": (True, True, True),
}
# the RAG prompt bench blend measures fusion with
SYSTEM_PROMPT, QUESTION = PROMPTS["cacheblend"]


@dataclass(frozen=True)
class Request:
    sample: int  # index in the pool
    question: str
    documents: tuple[str, ...]
    reordered: bool


@dataclass
class Reply:
    ttft_ms: float
    latency_ms: float
    cache: str
    info: dict
    text: str


def make_stream(pool: list[dict], n: int, *, zipf: float, reorder: float,
                seed: int) -> list[Request]:
    """``n`` requests over ``pool``: sample popularity ~ 1 / rank**zipf (ranks shuffled by
    ``seed``); a repeat has its passages shuffled with probability ``reorder``."""
    rng = random.Random(seed)
    ranks = list(range(len(pool)))
    rng.shuffle(ranks)
    weights = [1.0 / (rank + 1) ** zipf for rank in range(len(pool))]
    seen: set[int] = set()
    out = []
    for _ in range(n):
        i = ranks[rng.choices(range(len(pool)), weights)[0]]
        docs = documents(pool[i])
        shuffle = i in seen and rng.random() < reorder
        if shuffle:
            rng.shuffle(docs)
        seen.add(i)
        out.append(Request(i, pool[i]["question"], tuple(docs), shuffle))
    return out


def chat_body(model: str, req: Request, max_tokens: int) -> dict:
    return {
        "model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                     {"role": "user", "content": QUESTION.format(question=req.question)}],
        "documents": list(req.documents),
    }


def send(client, url: str, body: dict) -> Reply:
    """One streamed chat request; TTFT at the first event carrying text (or the last event,
    for an empty answer)."""
    t0 = time.perf_counter()
    first = None
    pieces, info = [], {}
    with client.stream("POST", f"{url}/v1/chat/completions", json=body) as resp:
        if resp.status_code != 200:
            resp.read()
            raise RuntimeError(f"HTTP {resp.status_code}: {resp.text[:300]}")
        cache = resp.headers.get("x-blendcache-cache", "")
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[len("data: "):])
            for choice in event.get("choices", []):
                text = choice["delta"].get("content")
                if text:
                    first = first or time.perf_counter()
                    pieces.append(text)
                if choice.get("finish_reason") is not None:
                    first = first or time.perf_counter()
            info = event.get("blendcache", info)
    done = time.perf_counter()
    return Reply((first - t0) * 1e3, (done - t0) * 1e3, cache, info, "".join(pieces))


def run_system(name: str, settings: Settings, engine, embedder, stream: list[Request], *,
               pool: list[dict], max_tokens: int, clients: int,
               log: Callable[[str], None] = print) -> tuple[list[Reply], float, dict]:
    """Serve ``stream`` from an empty cache under system ``name``; the replies in stream order,
    the stream's wall time in seconds (stored-ahead documents not included) and the server's
    hits per chunk tier."""
    import httpx

    from blendcache.middleware.app import create_app
    from blendcache.middleware.server import serving

    chunks_on, semantic_on, warmed = SYSTEMS[name]
    with tempfile.TemporaryDirectory(prefix=f"bench-serve-{name}-") as data_dir:
        system = dataclasses.replace(
            settings,
            storage=dataclasses.replace(settings.storage, data_dir=data_dir, database_url=None),
            blend=dataclasses.replace(settings.blend, enabled=chunks_on),
            semantic=dataclasses.replace(settings.semantic, enabled=semantic_on))
        app = create_app(system, engine=engine, embedder=embedder if semantic_on else None)
        model = engine.spec.name
        with serving(app) as url, httpx.Client(timeout=600) as client:
            if warmed:
                t0 = time.perf_counter()
                docs = list(dict.fromkeys(d for sample in pool for d in documents(sample)))
                resp = client.post(f"{url}/v1/blendcache/documents", json={
                    "model": model, "documents": docs,
                    "messages": [{"role": "system", "content": SYSTEM_PROMPT}]})
                resp.raise_for_status()
                log(f"  {name}: {resp.json()['chunks_stored']} documents stored ahead in "
                    f"{time.perf_counter() - t0:.1f} s")
            replies: list[Reply | None] = [None] * len(stream)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as workers:
                futures = {workers.submit(send, client, url, chat_body(model, r, max_tokens)): i
                           for i, r in enumerate(stream)}
                for future, i in futures.items():
                    replies[i] = future.result()
            wall = time.perf_counter() - t0
            _wait_idle(engine)  # a last deferred store would otherwise run into the next system
            stats = client.get(f"{url}/v1/blendcache/stats").json()
    tiers = stats.get("chunk_cache", {}).get("tiers", {})
    return replies, wall, {tier: counts["hits"] for tier, counts in tiers.items()}


def documents(sample: dict) -> list[str]:
    """A sample's passages as the request's documents: title line, then text."""
    return [f"{c['title']}\n{c['text']}" if c.get("title") else c["text"]
            for c in sample["ctxs"]]


def _wait_idle(engine) -> None:
    with engine.lock:
        pass


def summarize(replies: list[Reply], wall_s: float, reference: list[Reply] | None,
              tier_hits: dict | None = None) -> dict:
    ttft = [r.ttft_ms for r in replies]
    by_outcome: dict[str, list[Reply]] = {}
    for r in replies:
        by_outcome.setdefault(_outcome(r), []).append(r)
    by_outcome = dict(sorted(by_outcome.items()))
    reused = sum(r.info.get("chunks_reused", 0) for r in replies)
    total = sum(r.info.get("chunks_total", 0) for r in replies)
    prefill = [r.info["ttft_ms"] for r in replies if "ttft_ms" in r.info]
    out = {
        "ttft_ms_p50": percentile(ttft, 50), "ttft_ms_p90": percentile(ttft, 90),
        "ttft_ms_mean": sum(ttft) / len(ttft),
        "prefill_ms_p50": percentile(prefill, 50),
        "latency_ms_p50": percentile([r.latency_ms for r in replies], 50),
        "wall_s": wall_s,
        "outcomes": {o: len(rs) for o, rs in by_outcome.items()},
        # per outcome: the client's TTFT and the server's own, p50
        "ttft_ms_p50_by_outcome": {o: percentile([r.ttft_ms for r in rs], 50)
                                   for o, rs in by_outcome.items()},
        "prefill_ms_p50_by_outcome": {o: percentile([r.info["ttft_ms"] for r in rs], 50)
                                      for o, rs in by_outcome.items()},
        "chunks_reused_share": reused / total if total else 0.0,
        "chunk_tier_hits": tier_hits or {},
    }
    if reference is not None:
        out["agreement"] = sum(a.text == b.text for a, b in zip(replies, reference)) / len(replies)
    return out


def _outcome(reply: Reply) -> str:
    if reply.info.get("chunks_deferred"):
        return "miss_deferred"
    return reply.cache or "none"


def run_serve_bench(settings: Settings, engine, embedder, pool: list[dict], *, requests: int,
                    zipf: float = 1.0, reorder: float = 0.5, seed: int = 0, max_tokens: int = 24,
                    clients: int = 1, systems: list[str] | None = None,
                    log: Callable[[str], None] = print) -> dict:
    stream = make_stream(pool, requests, zipf=zipf, reorder=reorder, seed=seed)
    names = systems or list(SYSTEMS)
    unknown = set(names) - set(SYSTEMS)
    if unknown:
        raise ConfigError(f"unknown systems {sorted(unknown)}; known: {list(SYSTEMS)}")
    if "model_only" in names:  # the reference runs first
        names = ["model_only"] + [n for n in names if n != "model_only"]
    log(f"{len(stream)} requests over {len(pool)} samples ({len(set(r.sample for r in stream))} "
        f"distinct, {sum(r.reordered for r in stream)} reordered repeats)")
    results, reference = {}, None
    for name in names:
        replies, wall, tier_hits = run_system(name, settings, engine, embedder, stream,
                                              pool=pool, max_tokens=max_tokens, clients=clients,
                                              log=log)
        if name == "model_only":
            reference = replies
        results[name] = summarize(replies, wall, reference, tier_hits)
        log(f"  {name}: TTFT p50 {results[name]['ttft_ms_p50']:.0f} ms, "
            f"{results[name]['outcomes']}")
    if reference is not None:
        base = results["model_only"]
        for m in results.values():
            m["ttft_speedup"] = base["ttft_ms_mean"] / m["ttft_ms_mean"]
            m["throughput_gain"] = base["wall_s"] / m["wall_s"]
    return {"device": device_name(str(engine.device)), "model": engine.spec.name,
            "requests": len(stream), "pool": len(pool),
            "distinct": len({r.sample for r in stream}),
            "reordered": sum(r.reordered for r in stream), "zipf": zipf, "reorder": reorder,
            "seed": seed, "clients": clients, "max_tokens": max_tokens, "systems": results}


def format_table(result: dict) -> str:
    head = (f"{'system':<20}{'ttft p50':>10}{'ttft p90':>10}{'mean':>8}{'speedup':>9}"
            f"{'prefill p50':>13}{'wall s':>8}{'thru':>7}{'agree':>7}{'reuse':>7}  outcomes")
    lines = [f"{result['model']} on {result['device']}",
             f"{result['requests']} requests over {result['pool']} samples "
             f"({result['distinct']} distinct, {result['reordered']} repeats reordered), "
             f"zipf {result['zipf']}, {result['clients']} client(s), "
             f"{result['max_tokens']} tokens", head, "-" * len(head)]
    for name, m in result["systems"].items():
        outcomes = " ".join(f"{k}={v}" for k, v in m["outcomes"].items())
        lines.append(
            f"{name:<20}{m['ttft_ms_p50']:>10.0f}{m['ttft_ms_p90']:>10.0f}"
            f"{m['ttft_ms_mean']:>8.0f}{m.get('ttft_speedup', float('nan')):>8.2f}x"
            f"{m['prefill_ms_p50']:>13.0f}{m['wall_s']:>8.1f}"
            f"{m.get('throughput_gain', float('nan')):>6.2f}x"
            f"{m.get('agreement', float('nan')):>7.2f}{m['chunks_reused_share']:>7.2f}"
            f"  {outcomes}")
    lines.append("")
    lines.append(f"{'system':<20}{'outcome':<16}{'ttft p50':>10}{'prefill p50':>13}")
    for name, m in result["systems"].items():
        for outcome, ttft in m["ttft_ms_p50_by_outcome"].items():
            lines.append(f"{name:<20}{outcome:<16}{ttft:>10.0f}"
                         f"{m['prefill_ms_p50_by_outcome'][outcome]:>13.0f}")
        if m["chunk_tier_hits"]:
            hits = ", ".join(f"{t} {n}" for t, n in m["chunk_tier_hits"].items())
            lines.append(f"{name:<20}{'chunk hits':<16}{hits:>23}")
    lines.append("ttft: client side, to the first streamed token (includes waiting for the "
                 "engine); speedup: model_only's mean TTFT / the system's; thru: model_only's "
                 "wall time / the system's; agree: answer equals model_only's; reuse: share of "
                 "chunks served from the cache")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="FILE",
                        help="JSON array or JSONL of {question, answers[], ctxs[{title, text}]}")
    parser.add_argument("--offset", type=int, default=0, metavar="K",
                        help="skip the first K samples")
    parser.add_argument("--pool", type=int, default=20, metavar="M",
                        help="samples the questions are drawn from (default 20)")
    parser.add_argument("--requests", type=int, default=40, metavar="N",
                        help="requests in the stream (default 40)")
    parser.add_argument("--zipf", type=float, default=1.0, metavar="S",
                        help="popularity exponent (default 1.0; 0: uniform)")
    parser.add_argument("--reorder", type=float, default=0.5, metavar="P",
                        help="share of repeats whose passages come in another order (default 0.5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=24, metavar="T")
    parser.add_argument("--clients", type=int, default=1, metavar="C",
                        help="concurrent clients (default 1: one request at a time)")
    parser.add_argument("--systems", metavar="LIST",
                        help=f"comma-separated subset of {','.join(SYSTEMS)}")
    parser.add_argument("--json", metavar="OUT", help="write the result as JSON")


def run(args: argparse.Namespace, settings: Settings, engine, embedder) -> dict:
    rows = read_json_rows(args.data)
    pool = rows[args.offset:args.offset + args.pool]
    if not pool:
        raise ConfigError(f"{args.data}: no samples after offset {args.offset}")
    systems = [s.strip() for s in args.systems.split(",")] if args.systems else None
    result = run_serve_bench(settings, engine, embedder, pool, requests=args.requests,
                             zipf=args.zipf, reorder=args.reorder, seed=args.seed,
                             max_tokens=args.max_tokens, clients=args.clients, systems=systems)
    print(format_table(result))
    if args.json:
        write_result(args.json, result, vars(args), device=result["device"],
                     model=engine.spec.name,
                     dtype=str(engine.spec.dtype).removeprefix("torch."))
    return result
