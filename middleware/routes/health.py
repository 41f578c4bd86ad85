"""Probes, open without an API key. GET /healthz: liveness (the process answers, nothing else
is checked). GET /readyz: readiness (a model loaded, or upstream mode; the database reachable
on a fresh connection), a 503 in OpenAI's error shape naming what is not. GET /health: what is
loaded."""

from __future__ import annotations

from fastapi import APIRouter

from blendcache.errors import NotReadyError, StorageError
from blendcache.middleware.deps import PipelineDep
from blendcache.middleware.schemas import error_responses
from blendcache.storage.db import ping

router = APIRouter()


@router.get("/healthz", responses=error_responses(500))
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", responses=error_responses(500, 503))
def readyz(pipeline: PipelineDep) -> dict:
    # NOTE: in upstream mode the upstream is not probed (its failures are each request's
    # 502/504, and semantic hits are served without it).
    upstream = pipeline.upstream
    reasons = []
    if upstream is None and pipeline.engine is None:
        reasons.append("no model loaded")
    try:
        ping(pipeline.settings.storage.resolved_database_url())
    except StorageError as exc:
        reasons.append(str(exc))
    if reasons:
        raise NotReadyError("not ready: " + "; ".join(reasons))
    if upstream is not None:
        return {"status": "ready", "upstream": upstream.config.url}
    return {"status": "ready", "model": pipeline.model_id}


@router.get("/health", responses=error_responses(500))
def health(pipeline: PipelineDep) -> dict:
    if pipeline.upstream is not None:
        return {"status": "ok", "upstream": pipeline.upstream.config.url}
    spec = pipeline.engine.spec
    return {"status": "ok", "model": spec.name, "fingerprint": spec.fingerprint[:16]}
