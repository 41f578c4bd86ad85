"""GET /v1/models and /v1/models/{id}: the served model, in OpenAI's list shape."""

from __future__ import annotations

from fastapi import APIRouter

from blendcache.errors import NotFoundError
from blendcache.middleware.deps import PipelineDep, TenantDep
from blendcache.middleware.schemas import ModelList, ModelObject, error_responses

router = APIRouter()


def _model(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "blendcache"}


@router.get("/v1/models", response_model=ModelList, responses=error_responses(401, 500))
def list_models(pipeline: PipelineDep, _tenant: TenantDep) -> dict:
    return {"object": "list", "data": [_model(m) for m in pipeline.models()]}


@router.get("/v1/models/{model_id}", response_model=ModelObject,
            responses=error_responses(401, 404, 500))
def get_model(model_id: str, pipeline: PipelineDep, _tenant: TenantDep) -> dict:
    if model_id not in pipeline.models():
        raise NotFoundError(f"model {model_id!r} does not exist", param="model",
                            code="model_not_found")
    return _model(model_id)
