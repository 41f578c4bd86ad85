"""POST /v1/blendcache/documents: precompute the chunk KVs of documents ahead of the requests
that will carry them (chunk_cache/warm.py)."""

from __future__ import annotations

from fastapi import APIRouter

from blendcache.middleware.context import check_document_chars
from blendcache.middleware.deps import PipelineDep, TenantDep
from blendcache.middleware.schemas import DocumentsRequest, error_responses, plain_messages

router = APIRouter()


@router.post("/v1/blendcache/documents", responses=error_responses(400, 401, 404, 413, 500))
def store_documents(body: DocumentsRequest, pipeline: PipelineDep, tenant: TenantDep) -> dict:
    if body.model is not None:
        pipeline.check_model(body.model)
    check_document_chars(body.document_texts(), pipeline.settings.server)
    warmed = pipeline.store_documents(plain_messages(body.messages), body.document_texts(),
                                      tenant=tenant)
    return {"object": "blendcache.documents", "documents": warmed.total,
            "chunks_stored": warmed.stored, "chunks_already_stored": warmed.already}
