"""GET /health: liveness and what is loaded."""

from __future__ import annotations

from fastapi import APIRouter

from blendcache.middleware.deps import PipelineDep

router = APIRouter()


@router.get("/health")
def health(pipeline: PipelineDep) -> dict:
    spec = pipeline.engine.spec
    return {"status": "ok", "model": spec.name, "fingerprint": spec.fingerprint[:16]}
