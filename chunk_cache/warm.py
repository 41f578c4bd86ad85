"""Precompute chunk KVs before any request needs them (``blendcache warm``, or
``POST /v1/blendcache/documents``).

A chunk's key depends on what it is prefilled after: the prompt's shared prefix (the chat
template up to the documents: system prompt, earlier turns, the user header) and the
background. So documents are warmed under the messages their requests will carry before the
question; a request with the same messages and any question then finds them stored.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

from blendcache.chunk_cache.cache import ChunkCache
from blendcache.chunk_cache.layout import build_layout, format_document

# Documents per fill: bounds the KVs held before they are written (about 2-8 MB per passage
# for SmolLM2-135M in fp32) and how long a warm holds the engine from serving requests.
WARM_BATCH = 16


@dataclass(frozen=True)
class Warmed:
    total: int  # documents given (after dropping repeats)
    stored: int  # prefilled and stored now
    already: int  # found stored


@dataclass(frozen=True)
class WarmBatch:
    """One batch done (``warm``'s ``on_batch``): its documents, and what was prefilled."""

    documents: int
    stored: int  # chunks prefilled and stored
    tokens: int  # tokens of those chunks


def warm(cache: ChunkCache, documents: list[str], *, messages: list[dict] | None = None,
         lock: contextlib.AbstractContextManager | None = None, namespace: str = "",
         batch: int = WARM_BATCH,
         on_batch: Callable[[WarmBatch], None] | None = None) -> Warmed:
    """Prefill and store every document of ``documents`` that no tier holds, as chunks of a
    prompt that starts with ``messages`` (none: the chat template's default). ``lock`` (the
    engine's) is held for one batch at a time, so requests are served in between. ``namespace``:
    the tenant's, when tenants keep their chunks apart (ChunkCache.keys). ``on_batch`` is told
    of each batch once it is stored (progress). NOTE: what is stored stays stored, so a warm
    stopped halfway resumes when run again: the stored chunks are found and skipped."""
    context = [dict(m) for m in messages or []]
    if not context or context[-1]["role"] != "user":
        context.append({"role": "user", "content": ""})  # its content is not in the prefix
    unique = list(dict.fromkeys(format_document(d) for d in documents))
    stored = 0
    for start in range(0, len(unique), batch):
        part = unique[start:start + batch]
        layout = build_layout(cache.engine, context, part)
        with lock if lock is not None else contextlib.nullcontext():
            plan = cache.plan(layout, namespace)
            done = cache.fill(layout, namespace)
        stored += done
        if on_batch is not None:
            on_batch(WarmBatch(len(part), done, plan.missing_tokens if done else 0))
    return Warmed(len(unique), stored, len(unique) - stored)
