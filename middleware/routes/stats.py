"""GET /v1/blendcache/stats: requests and both cache layers as JSON, a tenant's own namespaces
only, or every tenant's with the admin token; GET /metrics: Prometheus' text format
(middleware/metrics.py), for the admin."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from blendcache.middleware.deps import AdminDep, MetricsDep, PipelineDep, ViewerDep
from blendcache.middleware.metrics import Metrics, blank_tenant_view
from blendcache.middleware.schemas import error_responses

router = APIRouter()


def collect(pipeline, metrics: Metrics) -> dict:
    """Everything: the server's counters, both caches, and each tenant's view."""
    out: dict = {"requests": dict(pipeline.metrics)}
    if pipeline.chunk_cache is not None:
        out["chunk_cache"] = pipeline.chunk_cache.stats()
        if pipeline.chunk_cache.store is not None:
            out["chunk_cache"]["stored"] = pipeline.chunk_cache.store.summary()
    entries = {}
    if pipeline.semantic is not None:
        semantic = pipeline.semantic.stats()
        out["semantic_cache"], entries = semantic.to_dict(), semantic.entries
    seen = metrics.tenants()
    names = sorted(set(seen) | {tenant for tenant, _, _ in entries})
    out["tenants"] = {name: _tenant_view(name, seen, entries) for name in names}
    out["categories"] = metrics.category_outcomes()  # category -> outcome -> requests
    return out


def tenant_stats(pipeline, metrics: Metrics, tenant: str) -> dict:
    """What ``tenant`` may see: its requests and its semantic namespaces."""
    entries = pipeline.semantic.stats().entries if pipeline.semantic is not None else {}
    return {"tenant": tenant, **_tenant_view(tenant, metrics.tenants(), entries)}


def _tenant_view(tenant: str, seen: dict[str, dict], entries: dict) -> dict:
    view = seen.get(tenant) or blank_tenant_view()
    own = {f"{category}/{model}": n for (t, category, model), n in sorted(entries.items())
           if t == tenant}
    return {**view, "semantic_cache": {"entries": own}}


@router.get("/v1/blendcache/stats", responses=error_responses(401, 500))
def stats(pipeline: PipelineDep, metrics: MetricsDep, viewer: ViewerDep) -> dict:
    if viewer.tenant is None:
        return collect(pipeline, metrics)
    return tenant_stats(pipeline, metrics, viewer.tenant)


@router.get("/metrics", response_class=PlainTextResponse, responses=error_responses(401, 500))
def prometheus(metrics: MetricsDep, _admin: AdminDep) -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
