import pytest
import torch

from blendcache.chunk_cache.cache import ChunkCache
from blendcache.chunk_cache.layout import build_layout, format_document
from blendcache.recompute.prefill import prefill_kv
from blendcache.storage.blobs.disk import DiskTier
from blendcache.storage.blobs.memory import MemoryTier
from blendcache.storage.chunk_store import ChunkStore
from blendcache.storage.db import make_engine

pytestmark = pytest.mark.model

DOCS = ["Alpha is the first letter of the Greek alphabet.",
        "Omega is the last letter of the Greek alphabet."]
ASK = [{"role": "user", "content": "Which letter is last?"}]


@pytest.fixture
def make_cache(engine, tmp_path):
    def make(*, memory_bytes=1 << 30, shared_prefix=True, background=()):
        tiers = [MemoryTier(memory_bytes), DiskTier(tmp_path / "kv", 1 << 30)]
        store = ChunkStore(make_engine(f"sqlite:///{tmp_path / 'meta.db'}"))
        return ChunkCache(engine, tiers=tiers, store=store, shared_prefix=shared_prefix,
                          background=background)
    return make


@pytest.fixture
def layout(engine):
    return build_layout(engine, ASK, [format_document(d) for d in DOCS])


def test_miss_prefills_then_memory_hits(make_cache, layout, engine):
    cache = make_cache()
    first = cache.lookup(layout)
    assert (first.reused, first.total, cache.prefills) == (0, 2, 3)  # prefix + 2 chunks
    again = cache.lookup(layout)
    assert again.reused == 2 and cache.prefills == 3
    assert cache.tiers[0].stats.hits == 3
    expected = prefill_kv(engine, layout.chunks[1], after=first.prefix)
    torch.testing.assert_close(again.chunks[1].k, expected.k)
    assert again.chunks[1].start == len(layout.prefix)
    _, keys = cache.keys(layout)
    meta = cache.store.get(keys[0])
    assert meta.hits == 1 and meta.tokens == len(layout.chunks[0]) and meta.tier == "disk"


def test_disk_hit_is_promoted_to_memory(make_cache, layout):
    cache = make_cache()
    cache.lookup(layout)
    cache.tiers[0].delete_many(cache.tiers[0].keys())
    found = cache.lookup(layout)
    assert found.reused == 2 and cache.prefills == 3
    assert cache.tiers[1].stats.hits == 3
    assert len(cache.tiers[0].keys()) == 3


def test_corrupt_blob_is_recomputed_not_served(make_cache, layout):
    cache = make_cache()
    first = cache.lookup(layout)
    cache.tiers[0].delete_many(cache.tiers[0].keys())
    _, keys = cache.keys(layout)
    path = cache.tiers[1].path(keys[0])
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x40
    path.write_bytes(bytes(data))
    found = cache.lookup(layout)
    assert found.reused == 1 and cache.prefills == 4
    assert cache.tiers[1].stats.corrupt == 1
    torch.testing.assert_close(found.chunks[0].k, first.chunks[0].k)


def test_without_shared_prefix_chunks_start_at_zero(make_cache, layout):
    cache = make_cache(shared_prefix=False)
    found = cache.lookup(layout)
    assert all(kv.start == 0 for kv in found.chunks)
    assert cache.keys(layout)[1] != make_cache().keys(layout)[1]


def test_background_chunks_are_prefilled_after_prefix_and_background(make_cache, layout, engine):
    background = tuple(engine.tokenizer.encode(
        format_document("Gamma is the third letter of the Greek alphabet."),
        add_special_tokens=False))
    cache = make_cache(background=background)
    first = cache.lookup(layout)
    assert cache.prefills == 4  # prefix, background, 2 chunks
    p, b = len(layout.prefix), len(background)
    assert [kv.start for kv in first.chunks] == [p + b, p + b]
    context = prefill_kv(engine, layout.prefix + background)
    expected = prefill_kv(engine, layout.chunks[1], after=context)
    torch.testing.assert_close(first.chunks[1].k, expected.k, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(first.chunks[1].v, expected.v, atol=1e-4, rtol=1e-4)
    assert cache.keys(layout)[1] != make_cache().keys(layout)[1]  # another context, other keys
    assert cache.keys(layout)[0] == make_cache().keys(layout)[0]  # the prefix is the same

    memory = cache.tiers[0].stats
    hits = memory.hits
    cache.lookup(layout)  # every chunk warm: the background is not even read
    assert memory.hits == hits + 3 and cache.prefills == 4
    other = build_layout(engine, ASK, [format_document(DOCS[0]), format_document("Beta is second.")])
    found = cache.lookup(other)  # one new chunk: prefilled after the stored background
    assert found.reused == 1 and cache.prefills == 5
    assert memory.hits == hits + 3 + 3  # prefix, the old chunk, the background


def test_background_documents_builtin_none_and_file(tmp_path):
    from blendcache.chunk_cache.background import BUILTIN_PASSAGES, background_documents
    from blendcache.errors import ConfigError

    assert background_documents("none") == []
    builtin = background_documents("builtin")
    assert len(builtin) == len(BUILTIN_PASSAGES) and builtin[0].startswith("River delta\n")
    path = tmp_path / "bg.txt"
    path.write_text("First passage.\n\n\nSecond\npassage.\n")
    assert background_documents(str(path)) == ["First passage.\n\n", "Second\npassage.\n\n"]
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(ConfigError, match="holds no text"):
        background_documents(str(tmp_path / "empty.txt"))


def test_plan_names_the_missing_chunks_without_reading_any(make_cache, layout, engine):
    cache = make_cache()
    before = cache.plan(layout)
    assert before.missing == (0, 1) and before.missing_share == 1.0
    assert before.chunk_tokens == sum(len(c) for c in layout.chunks)
    other = build_layout(engine, ASK, [format_document(DOCS[1])])
    cache.lookup(other)  # stores the second document (and the prefix)
    reads = cache.tiers[0].stats.hits + cache.tiers[0].stats.misses
    half = cache.plan(layout)
    assert half.missing == (0,)
    assert half.missing_share == len(layout.chunks[0]) / before.chunk_tokens
    assert cache.tiers[0].stats.hits + cache.tiers[0].stats.misses == reads


def test_fill_stores_only_what_is_missing_and_lookup_then_reuses_it(make_cache, layout, engine):
    cache = make_cache()
    other = build_layout(engine, ASK, [format_document(DOCS[1])])
    cache.lookup(other)
    assert cache.prefills == 2  # prefix + the second document
    assert cache.fill(layout) == 1 and cache.prefills == 3
    assert cache.fill(layout) == 0 and cache.prefills == 3
    found = cache.lookup(layout)
    assert found.reused == 2 and cache.prefills == 3
    expected = prefill_kv(engine, layout.chunks[0], after=found.prefix)
    torch.testing.assert_close(found.chunks[0].k, expected.k)


def test_namespaces_key_every_kv_apart(make_cache, layout):
    cache = make_cache(background=(11, 12, 13))
    shared = cache.keys(layout)
    acme, globex = cache.keys(layout, "acme"), cache.keys(layout, "globex")
    assert cache.keys(layout, "") == shared
    every = [shared[0], *shared[1], acme[0], *acme[1], globex[0], *globex[1],
             cache.background_key(layout), cache.background_key(layout, "acme")]
    assert len(set(every)) == len(every)
    cache.lookup(layout, "acme")
    assert cache.plan(layout, "acme").missing == ()
    assert cache.plan(layout, "globex").missing == (0, 1)
    assert cache.plan(layout).missing == (0, 1)
