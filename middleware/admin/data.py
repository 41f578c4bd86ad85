"""What the admin page shows, as one JSON-able dict (``GET /admin/data``, and the page's first
render): the totals and per-category hit rates of GET /v1/blendcache/stats (the same figures,
from the same ``collect``), the chunk tiers, and the time series drawn from request records.

A "hit" is a semantic hit (the category's threshold decides it); blends reuse chunk KVs and
count apart. "TTFT saved" is counted against the miss TTFT measured in the records of the
window: sum over the hits and blends of (mean miss TTFT - their TTFT).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from blendcache.middleware.metrics import Metrics
from blendcache.middleware.pipeline import ChatPipeline
from blendcache.middleware.routes.stats import collect
from blendcache.storage.requests import OutcomeTimes, RequestRecord, RequestStore

OUTCOMES = ("semantic-hit", "blend", "miss")
SAVING = ("semantic-hit", "blend")  # the outcomes that save TTFT against a miss
# Bucket widths of the time series, seconds: the narrowest that keeps a window to MAX_BUCKETS.
BUCKETS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
MAX_BUCKETS = 40
RECENT = 50
TOP_CHUNKS = 10


@dataclass(frozen=True)
class View:
    """What the reader asked for: the time window and the recent table's filters."""

    window_s: float = 86_400.0
    tenant: str | None = None
    category: str | None = None


def dashboard(pipeline: ChatPipeline, metrics: Metrics, records: RequestStore, view: View, *,
              now: float, retention_days: float) -> dict:
    stats = collect(pipeline, metrics)
    since = now - view.window_s
    if retention_days > 0:
        since = max(since, now - retention_days * 86_400)
    times = records.ttft_by_outcome(since=since)
    miss_ttft_ms = times["miss"].mean_ttft_ms if "miss" in times else None
    tenants, categories = records.names()
    chunk = stats.get("chunk_cache", {})
    totals = _totals(stats["categories"])
    ttft = _ttft(times, miss_ttft_ms)
    return {
        "generated_at": now,
        "window_s": view.window_s,
        "retention_days": retention_days,
        **totals,
        "tiles": tiles(totals["totals"], ttft),
        "timeline": _timeline(records, since=since, now=now, miss_ttft_ms=miss_ttft_ms),
        "ttft": ttft,
        "chunk_tiers": chunk.get("tiers", {}),
        "chunk_stored": chunk.get("stored"),
        "top_chunks": _top_chunks(pipeline),
        "recent": [_row(r) for r in records.recent(RECENT, tenant=view.tenant,
                                                   category=view.category)],
        "filters": {"tenant": view.tenant, "category": view.category, "tenants": tenants,
                    "categories": categories},
    }


def _totals(by_category: dict[str, dict[str, int]]) -> dict:
    """Requests by outcome and semantic hit rates, overall and per category, from the stats
    API's ``categories`` (category -> outcome -> requests)."""
    outcomes = {o: sum(c.get(o, 0) for c in by_category.values()) for o in OUTCOMES}
    requests = sum(sum(c.values()) for c in by_category.values())
    categories = {name: {"requests": sum(c.values()), "outcomes": dict(c),
                         "hit_rate": _rate(c.get("semantic-hit", 0), sum(c.values()))}
                  for name, c in sorted(by_category.items())}
    return {"totals": {"requests": requests, "outcomes": outcomes,
                       "hit_rate": _rate(outcomes["semantic-hit"], requests),
                       "reuse_rate": _rate(outcomes["semantic-hit"] + outcomes["blend"],
                                           requests)},
            "categories": categories}


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def tiles(totals: dict, ttft: dict) -> list[dict]:
    """The headline figures as the page prints them (the page and its refreshes print these
    texts as they are, so both say the same)."""
    counts = totals["outcomes"]
    return [
        {"id": "requests", "label": "Requests", "text": str(totals["requests"])},
        {"id": "semantic-hit", "label": "Semantic hits", "text": str(counts["semantic-hit"])},
        {"id": "blend", "label": "Blends (chunks reused)", "text": str(counts["blend"])},
        {"id": "miss", "label": "Misses", "text": str(counts["miss"])},
        {"id": "hit-rate", "label": "Semantic hit rate", "text": percent(totals["hit_rate"])},
        {"id": "ttft-saved", "label": f"TTFT saved ({ttft['saved_requests']} requests)",
         "text": duration(ttft["saved_ms"])},
    ]


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def duration(ms: float | None) -> str:
    if ms is None:
        return "–"
    return f"{ms:.0f} ms" if abs(ms) < 1000 else f"{ms / 1000:.2f} s"


def bucket_width(span_s: float) -> int:
    """The narrowest of BUCKETS_S that splits ``span_s`` into at most MAX_BUCKETS buckets."""
    return next((b for b in BUCKETS_S if span_s / b <= MAX_BUCKETS), BUCKETS_S[-1])


def _timeline(records: RequestStore, *, since: float, now: float,
              miss_ttft_ms: float | None) -> dict:
    """Per bucket: each category's hit rate (None where it had no request), requests by
    outcome, and the TTFT saved so far (None without a measured miss)."""
    first = records.first_created(since=since)
    if first is None:
        return {"bucket_s": None, "starts": [], "hit_rate": {}, "outcomes": {},
                "ttft_saved_ms": None}
    width = bucket_width(now - first)
    starts = [b * width for b in range(math.floor(first / width), math.floor(now / width) + 1)]
    index = {start: i for i, start in enumerate(starts)}
    outcomes = {o: [0] * len(starts) for o in OUTCOMES}
    hits: dict[str, list[int]] = {}
    totals: dict[str, list[int]] = {}
    saved = [0.0] * len(starts)
    for cell in records.timeline(width, since=since):
        i = index.get(cell.start)
        if i is None:  # written after ``now`` was read
            continue
        outcomes.setdefault(cell.outcome, [0] * len(starts))[i] += cell.requests
        totals.setdefault(cell.category, [0] * len(starts))[i] += cell.requests
        hits.setdefault(cell.category, [0] * len(starts))
        if cell.outcome == "semantic-hit":
            hits[cell.category][i] += cell.requests
        if cell.outcome in SAVING and miss_ttft_ms is not None:
            saved[i] += cell.requests * miss_ttft_ms - cell.ttft_ms_sum
    hit_rate = {c: [_rate(h, n) for h, n in zip(hits[c], totals[c])] for c in sorted(totals)}
    cumulative = [sum(saved[:i + 1]) for i in range(len(saved))]
    return {"bucket_s": width, "starts": starts, "hit_rate": hit_rate, "outcomes": outcomes,
            "ttft_saved_ms": cumulative if miss_ttft_ms is not None else None}


def _ttft(times: dict[str, OutcomeTimes], miss_ttft_ms: float | None) -> dict:
    saved = None
    if miss_ttft_ms is not None:
        saved = sum((miss_ttft_ms - times[o].mean_ttft_ms) * times[o].requests
                    for o in SAVING if o in times)
    return {"outcomes": {o: {"requests": t.requests, "mean_ttft_ms": t.mean_ttft_ms,
                             "p50_ttft_ms": t.p50_ttft_ms} for o, t in times.items()},
            "miss_mean_ttft_ms": miss_ttft_ms, "saved_ms": saved,
            "saved_requests": sum(times[o].requests for o in SAVING if o in times)}


def _top_chunks(pipeline: ChatPipeline) -> list[dict]:
    cache = pipeline.chunk_cache
    if cache is None or cache.store is None:
        return []
    return [{"key": m.key[:12], "tier": m.tier, "tokens": m.tokens, "bytes": m.bytes,
             "hits": m.hits} for m in cache.store.top(TOP_CHUNKS) if m.hits > 0]


def _row(r: RequestRecord) -> dict:
    return {"time": dt.datetime.fromtimestamp(r.created, dt.timezone.utc)
            .strftime("%Y-%m-%d %H:%M:%S"), "created": r.created, "tenant": r.tenant,
            "category": r.category, "outcome": r.outcome, "similarity": r.similarity,
            "chunks_reused": r.chunks_reused, "chunks_total": r.chunks_total,
            "tokens_recomputed": r.tokens_recomputed, "ttft_ms": round(r.ttft_ms, 1),
            "latency_ms": round(r.latency_ms, 1)}
