"""The semantic answer cache on its own, without a model call: ``POST /v1/blendcache/lookup``
(the cached answer of a query, or none) and ``POST /v1/blendcache/store`` (keep an answer made
elsewhere). A framework's own cache hook (LangChain's ``BaseCache``) looks up before its model
and stores after it. Both key as a chat request does (``ChatPipeline.semantic_key``): the
caller's tenant, the category, and the context fingerprint of earlier turns and documents. A
cache failure is a miss, or nothing stored, as in chat (``ChatPipeline._degrade``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from blendcache.errors import InvalidRequestError, NotFoundError
from blendcache.index.semantic_cache import CachedAnswer
from blendcache.middleware.deps import PipelineDep, TenantDep, semantic_cache
from blendcache.middleware.pipeline import ChatJob, ChatPipeline, Looked, SemanticKey
from blendcache.middleware.schemas import (BlendcacheOptions, ChatCompletionRequest, ChatMessage,
                                           DocumentObject, error_responses)

router = APIRouter()
NonBlank = Annotated[StrictStr, Field(min_length=1, pattern=r"\S")]


class SemanticRequest(BaseModel):
    """A query and what its answer depends on. ``model``: the namespace of the answers: a
    model this server serves (or ``default``) is the one chat requests key by, so a lookup sees
    their answers; any other name is a namespace of its own (the LangChain cache uses a hash of
    its LLM's parameters). ``context``: the messages before the query (system prompt, earlier
    turns); ``documents``: the retrieved context, as in a chat request."""

    model_config = ConfigDict(extra="forbid")

    query: NonBlank
    model: NonBlank
    category: StrictStr | None = None
    context: list[ChatMessage] = []
    documents: list[StrictStr | DocumentObject] | None = None


class StoreRequest(SemanticRequest):
    answer: NonBlank
    # the lookup's exploration_id, when the answer is the caller's model's answer to it
    exploration_id: StrictStr | None = None


class LookupResponse(BaseModel):
    object: Literal["blendcache.lookup"]
    hit: bool
    entry_id: int | None  # the entry that answered (DELETE /v1/blendcache/entries/{id})
    similarity: float | None  # of the cached query, on a hit
    answer: str | None
    category: str | None  # the category the query was looked up in
    # A category with max_error_rate explores a candidate it may not serve yet: no hit, and
    # this id, to send with the caller's own model's answer to /store, which compares the two
    # (what the category learns from). None otherwise.
    exploration_id: str | None = None
    # On a hit: the id POST /v1/blendcache/feedback takes, to say whether it was right.
    feedback_id: str | None = None


class StoreResponse(BaseModel):
    object: Literal["blendcache.store"]
    entry_id: int | None  # None: nothing stored (no category could be chosen, or the cache
    # failed: both logged and counted in blendcache_cache_failures)
    category: str | None


@router.post("/v1/blendcache/lookup", response_model=LookupResponse,
             responses=error_responses(400, 401, 413, 500))
def lookup(body: SemanticRequest, pipeline: PipelineDep, tenant: TenantDep) -> dict:
    return look_up(pipeline, body, tenant=tenant)


@router.post("/v1/blendcache/store", response_model=StoreResponse,
             responses=error_responses(400, 401, 413, 500))
def store(body: StoreRequest, pipeline: PipelineDep, tenant: TenantDep) -> dict:
    return keep(pipeline, body, tenant=tenant)


def look_up(pipeline: ChatPipeline, body: SemanticRequest, *, tenant: str) -> dict:
    """The cached answer of ``body.query`` for ``tenant`` (a ``LookupResponse``)."""
    key = _key(body, pipeline, tenant)
    looked = pipeline.semantic_lookup(key) if key is not None else Looked(None)
    hit = looked.hit
    return {"object": "blendcache.lookup", "hit": hit is not None,
            "entry_id": hit.entry_id if hit else None,
            "similarity": round(hit.similarity, 4) if hit else None,
            "answer": hit.response.text if hit else None,
            "category": key.category if key is not None else None,
            "exploration_id": looked.exploration_id, "feedback_id": looked.feedback_id}


def keep(pipeline: ChatPipeline, body: StoreRequest, *, tenant: str) -> dict:
    """Store ``body.answer`` for ``body.query`` of ``tenant`` (a ``StoreResponse``)."""
    key = _key(body, pipeline, tenant)
    entry_id = None
    if key is not None:
        entry_id = pipeline.semantic_store(key, _answer(body.answer, pipeline),
                                           exploration_id=body.exploration_id)
    return {"object": "blendcache.store", "entry_id": entry_id,
            "category": key.category if key is not None else None}


def _key(body: SemanticRequest, pipeline: ChatPipeline, tenant: str) -> SemanticKey | None:
    names = semantic_cache(pipeline).policy.names
    if body.category is not None and body.category not in names:
        raise InvalidRequestError(f"unknown category {body.category!r}; known: "
                                  f"{', '.join(names)}", param="category")
    request = ChatCompletionRequest(
        model=body.model, messages=[*body.context, ChatMessage(role="user", content=body.query)],
        documents=body.documents, blendcache=BlendcacheOptions(category=body.category))
    return pipeline.semantic_key(ChatJob(request=request, tenant=tenant),
                                 model=_namespace(pipeline, body.model))


def _namespace(pipeline: ChatPipeline, model: str) -> str:
    """A name the server serves resolves as chat resolves it; any other is kept as it is."""
    try:
        return pipeline.check_model(model)
    except NotFoundError:
        return model


def _answer(text: str, pipeline: ChatPipeline) -> CachedAnswer:
    """An answer made elsewhere, as complete. NOTE: with a local model its token ids are kept,
    so a chat request with a smaller max_tokens gets it cut, as the model's own answers."""
    if pipeline.engine is None:
        return CachedAnswer(text, "stop")
    token_ids = pipeline.engine.tokenizer.encode(text, add_special_tokens=False)
    return CachedAnswer(text, "stop", tuple(token_ids))
