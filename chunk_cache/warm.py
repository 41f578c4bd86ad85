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


def warm(cache: ChunkCache, documents: list[str], *, messages: list[dict] | None = None,
         lock: contextlib.AbstractContextManager | None = None, namespace: str = "",
         batch: int = WARM_BATCH) -> Warmed:
    """Prefill and store every document of ``documents`` that no tier holds, as chunks of a
    prompt that starts with ``messages`` (none: the chat template's default). ``lock`` (the
    engine's) is held for one batch at a time, so requests are served in between. ``namespace``:
    the tenant's, when tenants keep their chunks apart (ChunkCache.keys)."""
    context = [dict(m) for m in messages or []]
    if not context or context[-1]["role"] != "user":
        context.append({"role": "user", "content": ""})  # its content is not in the prefix
    unique = list(dict.fromkeys(format_document(d) for d in documents))
    stored = 0
    for start in range(0, len(unique), batch):
        layout = build_layout(cache.engine, context, unique[start:start + batch])
        with lock if lock is not None else contextlib.nullcontext():
            stored += cache.fill(layout, namespace)
    return Warmed(len(unique), stored, len(unique) - stored)
