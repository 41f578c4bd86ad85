"""A RAG prompt's KV cache from the chunk cache, in one call: plan, look up, prefill, blend.

``fuse`` is what the serving pipeline and the benchmarks call: it asks the cache which chunks
it holds, and either answers a mostly cold prompt with a plain full prefill (its chunks are
then stored after the response, ``ChunkCache.fill``) or looks every chunk up (prefilling and
storing the misses) and fuses them with RoPE re-alignment and selective recomputation
(recompute/blend.py, CacheBlend, Yao et al. 2024).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from blendcache.chunk_cache.cache import ChunkCache
from blendcache.chunk_cache.layout import PromptLayout
from blendcache.recompute.blend import BlendOptions, blend
from blendcache.recompute.generate import Prefilled, prefill

__all__ = ["BlendOptions", "ChunkReport", "fuse"]


@dataclass(frozen=True)
class ChunkReport:
    """How a prompt's cache was obtained from the chunk cache.

    ``deferred`` chunks were missing from every tier in a prompt too cold to fuse: a full
    prefill answered, and the caller stores them with ``ChunkCache.fill`` once it can.
    """

    chunks_total: int
    chunks_reused: int  # found in a tier and fused (0 when a full prefill answered)
    chunks_deferred: int  # 0 unless the prompt was answered by a full prefill
    recompute_ratio: float | None  # None when nothing was fused
    tokens_recomputed: int  # chunk tokens that went through the last layer
    elapsed_ms: float  # plan + lookup (+ prefill of new chunks) + fusion: the prompt's TTFT
    tokens_reused: int = 0  # tokens of the chunks found in a tier

    @property
    def fused(self) -> bool:
        return self.recompute_ratio is not None


def fuse(cache: ChunkCache, layout: PromptLayout, *, options: BlendOptions, namespace: str = "",
         max_missing_share: float = 1.0) -> tuple[Prefilled, ChunkReport]:
    """The prompt cache of ``layout`` and the first-token logits, built from ``cache``.

    More than ``max_missing_share`` of the chunk tokens missing (1.0: never) -> a full prefill,
    the missing chunks left to the caller (``ChunkReport.chunks_deferred``). Otherwise every
    chunk is looked up under ``namespace`` (misses prefilled and stored) and blended."""
    t0 = time.perf_counter()
    total = len(layout.chunks)
    if max_missing_share < 1.0:
        plan = cache.plan(layout, namespace)
        if plan.missing_share > max_missing_share:
            start = prefill(cache.engine, layout.ids)
            return start, ChunkReport(total, 0, len(plan.missing), None, 0, start.prefill_ms)
    found = cache.lookup(layout, namespace)
    start, stats = blend(cache.engine, layout.ids, found.prefix, found.chunks, options)
    elapsed_ms = (time.perf_counter() - t0) * 1e3
    report = ChunkReport(total, found.reused, 0, options.recompute_ratio,
                         stats.recomputed_tokens, elapsed_ms, found.reused_tokens)
    return Prefilled(start.cache, start.logits, start.prompt_tokens, elapsed_ms), report
