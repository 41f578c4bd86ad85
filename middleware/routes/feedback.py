"""Explicit feedback on a served semantic hit: ``POST /v1/blendcache/feedback {id, correct}``.

``id`` is the response's id (``blendcache.feedback_id`` of a semantic hit); the server keeps
the most recent served hits (``SemanticCache.served``). The feedback counts for or against the
entry that served and its category (index/guarantee.py): in a category with
``max_error_rate`` it decides what is served next. A tenant reaches only its own responses: any
other id is a 404, as an unknown or already judged one is (one feedback per response).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from blendcache.errors import NotFoundError
from blendcache.index.guarantee import ServedHit
from blendcache.middleware.deps import PipelineDep, TenantDep, semantic_cache
from blendcache.middleware.pipeline import ChatPipeline
from blendcache.middleware.schemas import error_responses

router = APIRouter()


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=256)]  # the response's id
    correct: StrictBool  # was the served answer right for the question?


class FeedbackRecorded(BaseModel):
    object: Literal["blendcache.feedback"]
    id: str
    correct: bool
    entry_id: int  # the semantic cache entry that served the answer
    category: str


def give_feedback(pipeline: ChatPipeline, response_id: str, correct: bool, *,
                  tenant: str | None) -> dict:
    """Record ``correct`` for the served hit of ``response_id`` (of ``tenant``; None: any);
    the response body. A 404 if no such hit is remembered."""
    served: ServedHit | None = semantic_cache(pipeline).feedback(response_id, correct,
                                                                 tenant=tenant)
    if served is None:
        raise NotFoundError(f"no served semantic hit {response_id!r} awaits feedback (unknown, "
                            f"already judged, or too old)", param="id",
                            code="response_not_found")
    pipeline.metrics["semantic_feedback"] += 1
    pipeline.metrics["semantic_feedback_wrong"] += not correct
    return {"object": "blendcache.feedback", "id": response_id, "correct": correct,
            "entry_id": served.entry_id, "category": served.category}


@router.post("/v1/blendcache/feedback", response_model=FeedbackRecorded,
             responses=error_responses(400, 401, 404, 500))
def feedback(body: FeedbackRequest, pipeline: PipelineDep, tenant: TenantDep) -> dict:
    return give_feedback(pipeline, body.id, body.correct, tenant=tenant)
