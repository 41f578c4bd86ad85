"""Invalidation of the semantic answer cache. ``DELETE /v1/blendcache/entries/{entry_id}``
forgets one answer (its id is the response's ``blendcache.entry_id``); ``DELETE
/v1/blendcache/entries?category=NAME`` forgets every answer of the caller's tenant, or of one
category. An API key reaches its own tenant's entries only; the admin token (or anyone on an
open server without one, as for the stats) reaches every tenant's, or one named by
``?tenant=``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel

from blendcache.errors import AuthenticationError, NotFoundError
from blendcache.middleware.deps import PipelineDep, ViewerDep, semantic_cache
from blendcache.middleware.pipeline import ChatPipeline
from blendcache.middleware.schemas import error_responses

router = APIRouter()
EntryId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class EntriesDeleted(BaseModel):
    object: Literal["blendcache.entries.deleted"]
    deleted: int  # entries removed


def _deleted(count: int) -> dict:
    return {"object": "blendcache.entries.deleted", "deleted": count}


# NOTE: the listing and the tenant check read SemanticCache's store (``_store``): the cache
# offers no public lookup of entries by id or namespace yet (index/ could add one).


def forget_entry(pipeline: ChatPipeline, entry_id: int, *, tenant: str | None) -> int:
    """Delete entry ``entry_id`` of ``tenant`` (None: of any tenant); 404 if there is none."""
    semantic = semantic_cache(pipeline)
    entry = semantic._store.get_many([entry_id]).get(entry_id)
    # NOTE: another tenant's entry is a 404 too, so a key cannot probe which ids exist.
    if entry is None or tenant not in (None, entry.tenant):
        raise NotFoundError(f"no semantic cache entry {entry_id}", param="entry_id",
                            code="entry_not_found")
    return semantic.delete([entry_id])


def forget_entries(pipeline: ChatPipeline, *, tenant: str | None,
                   category: str | None = None) -> int:
    """Delete every entry of ``tenant`` (None: of every tenant) in ``category`` (None: in
    every category); how many went. An unknown category is a 404."""
    semantic = semantic_cache(pipeline)
    if category is not None and category not in semantic.policy.names:
        raise NotFoundError(f"unknown category {category!r}; known: "
                            f"{', '.join(semantic.policy.names)}", param="category",
                            code="category_not_found")
    return semantic.delete(semantic._store.ids(tenant=tenant, category=category))


@router.delete("/v1/blendcache/entries/{entry_id}", response_model=EntriesDeleted,
               responses=error_responses(400, 401, 404, 500))
def delete_entry(entry_id: EntryId, pipeline: PipelineDep, viewer: ViewerDep) -> dict:
    return _deleted(forget_entry(pipeline, entry_id, tenant=viewer.tenant))


@router.delete("/v1/blendcache/entries", response_model=EntriesDeleted,
               responses=error_responses(400, 401, 404, 500))
def delete_entries(pipeline: PipelineDep, viewer: ViewerDep, category: str | None = None,
                   tenant: str | None = None) -> dict:
    if tenant is not None and viewer.tenant not in (None, tenant):
        raise AuthenticationError("deleting another tenant's entries needs the admin token: "
                                  "send 'Authorization: Bearer <admin_token>'",
                                  code="invalid_admin_token")
    return _deleted(forget_entries(pipeline, tenant=viewer.tenant or tenant, category=category))
