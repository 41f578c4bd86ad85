"""GET /health: liveness and what is loaded."""

from __future__ import annotations

from fastapi import APIRouter

from blendcache.middleware.deps import PipelineDep

router = APIRouter()


@router.get("/health")
def health(pipeline: PipelineDep) -> dict:
    if pipeline.upstream is not None:
        return {"status": "ok", "upstream": pipeline.upstream.config.url}
    spec = pipeline.engine.spec
    return {"status": "ok", "model": spec.name, "fingerprint": spec.fingerprint[:16]}
