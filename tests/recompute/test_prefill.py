"""Chunks prefilled together in our own layer loop equal the HF forward run on each alone."""

import pytest
import torch

from blendcache.chunk_cache.layout import build_layout, format_document
from blendcache.recompute import prefill as prefill_module
from blendcache.recompute.prefill import prefill_chunks, prefill_kv

pytestmark = pytest.mark.model

DOCS = [
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris, France.",
    "Mount Fuji is the highest mountain in Japan, at 3,776 metres above sea level. It last "
    "erupted in 1707 and is climbed by some two hundred thousand people every summer.",
    "Kappa.",
]
ASK = [{"role": "user", "content": "When was the Eiffel Tower completed?"}]


def assert_same(got, expected):
    assert got.start == expected.start and got.k.shape == expected.k.shape
    torch.testing.assert_close(got.k, expected.k, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got.v, expected.v, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def layout(engine):
    return build_layout(engine, ASK, [format_document(d) for d in DOCS])


@pytest.mark.parametrize("context", ["none", "prefix", "prefix+background"])
def test_prefill_chunks_equals_each_chunk_prefilled_alone(engine, layout, context):
    after = None
    if context != "none":
        extra = layout.chunks[1] if context == "prefix+background" else ()
        after = prefill_kv(engine, layout.prefix + extra)
    chunks = list(layout.chunks)
    assert max(map(len, chunks)) > 32  # after a context, the long one attends in two blocks
    for got, chunk in zip(prefill_chunks(engine, chunks, after=after), chunks, strict=True):
        assert_same(got, prefill_kv(engine, chunk, after=after))


def test_prefill_chunks_in_groups_bounded_in_tokens(engine, layout, monkeypatch):
    after = prefill_kv(engine, layout.prefix)
    whole = prefill_chunks(engine, list(layout.chunks), after=after)
    monkeypatch.setattr(prefill_module, "CHUNK_PREFILL_TOKENS", len(layout.chunks[0]) + 1)
    grouped = prefill_chunks(engine, list(layout.chunks), after=after)  # one chunk per pass
    for a, b in zip(grouped, whole, strict=True):
        assert_same(a, b)


def test_a_chunk_without_tokens_has_an_empty_kv(engine, layout):
    after = prefill_kv(engine, layout.prefix)
    empty, kappa = prefill_chunks(engine, [(), layout.chunks[2]], after=after)
    assert empty.num_tokens == 0 and empty.k.shape[0] == engine.spec.num_layers
    assert_same(kappa, prefill_kv(engine, layout.chunks[2], after=after))
