"""Warming: chunk KVs stored ahead of the requests that will carry them."""

import pytest

from blendcache.chunk_cache.cache import ChunkCache
from blendcache.chunk_cache.layout import build_layout, format_document
from blendcache.chunk_cache.warm import warm
from blendcache.storage.blobs.memory import MemoryTier

pytestmark = pytest.mark.model

DOCS = ["Alpha is the first letter of the Greek alphabet.",
        "Omega is the last letter of the Greek alphabet.",
        "Beta is the second letter of the Greek alphabet."]
SYSTEM = [{"role": "system", "content": "Answer from the passages."}]


def request_layout(engine, messages, question, docs):
    return build_layout(engine, [*messages, {"role": "user", "content": question}],
                        [format_document(d) for d in docs])


def test_warmed_documents_are_found_by_requests_with_any_question(engine):
    cache = ChunkCache(engine, tiers=[MemoryTier(1 << 30)])
    warmed = warm(cache, DOCS + DOCS[:1], messages=SYSTEM, batch=2)  # a repeat, two batches
    assert (warmed.total, warmed.stored, warmed.already) == (3, 3, 0)
    for question in ("Which letter is last?", "Name the second letter."):
        layout = request_layout(engine, SYSTEM, question, [DOCS[2], DOCS[0]])
        assert cache.plan(layout).missing == ()
    again = warm(cache, DOCS, messages=SYSTEM)
    assert (again.stored, again.already) == (0, 3)


def test_documents_warmed_under_another_system_prompt_are_other_chunks(engine):
    cache = ChunkCache(engine, tiers=[MemoryTier(1 << 30)])
    warm(cache, DOCS[:1], messages=SYSTEM)
    other = [{"role": "system", "content": "Be brief."}]
    assert cache.plan(request_layout(engine, other, "Which?", DOCS[:1])).missing == (0,)
    assert cache.plan(request_layout(engine, [], "Which?", DOCS[:1])).missing == (0,)
    warm(cache, DOCS[:1])  # no system prompt: the template's default
    assert cache.plan(request_layout(engine, [], "Which?", DOCS[:1])).missing == ()
