"""GET /v1/blendcache/stats: counters of both cache layers and the pipeline, as JSON;
GET /metrics: the same counters in Prometheus' text format."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from blendcache.middleware.deps import PipelineDep, TenantDep

router = APIRouter()


def collect(pipeline) -> dict:
    out: dict = {"requests": dict(pipeline.metrics)}
    if pipeline.chunk_cache is not None:
        out["chunk_cache"] = pipeline.chunk_cache.stats()
        if pipeline.chunk_cache.store is not None:
            out["chunk_cache"]["stored"] = pipeline.chunk_cache.store.summary()
    if pipeline.semantic is not None:
        out["semantic_cache"] = pipeline.semantic.stats().to_dict()
    return out


@router.get("/v1/blendcache/stats")
def stats(pipeline: PipelineDep, _tenant: TenantDep) -> dict:
    return collect(pipeline)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(pipeline: PipelineDep) -> str:
    lines = []
    for name, value in sorted(pipeline.metrics.items()):
        lines.append(f"blendcache_{name}_total {value}")
    if pipeline.chunk_cache is not None:
        for tier, counts in pipeline.chunk_cache.stats()["tiers"].items():
            for name, value in counts.items():
                lines.append(f'blendcache_chunk_tier_{name}{{tier="{tier}"}} {value}')
    if pipeline.semantic is not None:
        sem = pipeline.semantic.stats()
        lines += [f"blendcache_semantic_lookups_total {sem.lookups}",
                  f"blendcache_semantic_hits_total {sem.hits}"]
        for reason, n in sorted(sem.rejections.items()):
            lines.append(f'blendcache_semantic_rejections_total{{reason="{reason}"}} {n}')
    return "\n".join(lines) + "\n"
